// Command step-ca runs the smallstep certificate authority from the Go library that Debian
// packages as golang-github-smallstep-certificates-dev. That package ships the commands package
// but no main, so this file supplies one. build.sh next to it compiles it.
package main

import (
	"fmt"
	"os"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"
)

// version is set by build.sh from the installed Debian package version.
var version = "unknown"

func main() {
	app := cli.NewApp()
	app.Name = "step-ca"
	app.Usage = "run an online certificate authority from a ca.json configuration"
	app.Version = version
	app.UsageText = commands.AppCommand.UsageText
	app.Flags = commands.AppCommand.Flags
	app.Action = commands.AppCommand.Action
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
