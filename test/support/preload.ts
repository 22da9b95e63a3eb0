// Loaded by bun test before every test file (bunfig.toml).
import "reflect-metadata";
