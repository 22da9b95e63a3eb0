/**
 * federation-enroll: the peer's side of enrollment in one command. Run it through
 * bin/federation-enroll.mjs, or directly with `bun src/cli/federation-enroll/main.ts`.
 *
 *   federation-enroll --url https://enroll.example.org --token fedtok_... \
 *     --fingerprint 3f1c... --out /etc/federation
 */
import "reflect-metadata";
import { HELP, parseOptions } from "./args.ts";
import { EnrollError, EXIT } from "./errors.ts";
import { generatePeerKey } from "./key.ts";
import { redeemToken } from "./redeem.ts";
import { pinRoot } from "./trust.ts";
import { verifyEnrollment } from "./verify.ts";
import { prepareOutputDir, writeOutput } from "./write.ts";

/** Runs the command and returns its exit code. Progress goes to stdout, errors to stderr. */
async function run(argv: string[]): Promise<number> {
  try {
    const options = parseOptions(argv);
    if (options === "help") {
      console.log(HELP);
      return EXIT.ok;
    }
    const say = options.quiet ? () => {} : (line: string) => console.log(line);

    await prepareOutputDir(options.outDir, options.force);
    const root = await pinRoot(options.baseUrl, options.fingerprint);
    say(`trust: pinned root "${root.subject}" (sha256 ${root.fingerprint})`);

    const key = await generatePeerKey(options.keyType);
    say(`key: generated a new ${key.keyType} private key; it stays on this machine`);

    const { replayed, response } = await redeemToken(
      { baseUrl: options.baseUrl, token: options.token, csrPem: key.csrPem, rootPem: root.pem },
      say,
    );
    say(
      `redeem: ${replayed ? "received again the certificate issued to this key" : "certificate issued"} ` +
        `for peer ${response.peer.name}, serial ${response.serialNumber}, ` +
        `valid until ${response.notAfter}`,
    );

    const verified = await verifyEnrollment(response, key, root);
    say(
      `verify: chains to the pinned root, contains this key, names grant ${response.grant.id} ` +
        `and peer ${response.peer.id}`,
    );

    const files = {
      key: key.privateKeyPem,
      cert: verified.certificatePem,
      chain: verified.chainPem,
      root: root.pem,
    };
    await writeOutput(options.outDir, files, options.force).catch((error: unknown) => {
      // The directory was checked before the redeem, so this is rare, but the token is spent.
      const message = error instanceof Error ? error.message : String(error);
      throw new EnrollError(
        EXIT.output,
        `${message}; the certificate was issued but not saved, so ask the admin for a new token`,
        { cause: error },
      );
    });
    say(`write: key.pem, cert.pem, chain.pem and root.pem in ${options.outDir}`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof EnrollError) {
      console.error(`federation-enroll: ${error.message}`);
      return error.exitCode;
    }
    console.error("federation-enroll: unexpected error:", error);
    return EXIT.unexpected;
  }
}

process.exitCode = await run(process.argv.slice(2));
