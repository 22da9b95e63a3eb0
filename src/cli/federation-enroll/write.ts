import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, link, mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { EnrollError, EXIT } from "./errors.ts";

export const KEY_FILE = "key.pem";

export interface OutputFiles {
  key: string;
  cert: string;
  chain: string;
  root: string;
}

function outputError(message: string, cause: unknown): EnrollError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new EnrollError(EXIT.output, `${message}: ${reason}`, { cause });
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates the output directory and checks it before any request is sent, so that a redeemed token
 * is never lost to an existing key.pem or an unwritable directory.
 */
export async function prepareOutputDir(outDir: string, force: boolean): Promise<void> {
  const keyFile = path.join(outDir, KEY_FILE);
  if (!force && (await exists(keyFile))) {
    throw new EnrollError(
      EXIT.output,
      `${keyFile} already exists; pass --force to replace it, or choose another --out`,
    );
  }
  try {
    await mkdir(outDir, { recursive: true, mode: 0o700 });
    await access(outDir, constants.W_OK);
  } catch (error) {
    throw outputError(`cannot write to ${outDir}`, error);
  }
}

/**
 * Writes `content` to a temporary file in the target's directory, syncs it and moves it into
 * place, so that a reader never sees a partial file. Without `replace`, link() moves it, because
 * link() fails on an existing target where rename() would overwrite it.
 */
async function writeAtomic(
  target: string,
  content: string,
  mode: number,
  replace: boolean,
): Promise<void> {
  const temporary = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  try {
    const handle = await open(temporary, "wx", mode);
    try {
      await handle.writeFile(content);
      // chmod, because open() applies the umask; a key file is exactly 0600 either way.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (replace) await rename(temporary, target);
    else await link(temporary, target);
  } catch (error) {
    throw outputError(`cannot write ${target}`, error);
  } finally {
    await rm(temporary, { force: true });
  }
}

/** Syncs the directory so that the renames survive a crash. Some file systems refuse; that is fine. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close();
}

/** Writes key.pem (0600), cert.pem, chain.pem and root.pem; returns their paths. */
export async function writeOutput(
  outDir: string,
  files: OutputFiles,
  force: boolean,
): Promise<string[]> {
  const written: string[] = [];
  const entries: [string, string, number, boolean][] = [
    [KEY_FILE, files.key, 0o600, force],
    ["cert.pem", files.cert, 0o644, true],
    ["chain.pem", files.chain, 0o644, true],
    ["root.pem", files.root, 0o644, true],
  ];
  for (const [name, content, mode, replace] of entries) {
    const target = path.join(outDir, name);
    await writeAtomic(target, content, mode, replace);
    written.push(target);
  }
  await syncDirectory(outDir);
  return written;
}
