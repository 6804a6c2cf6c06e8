/**
 * The join key read from a file (`joinKeyFile`), the way it reaches an agent run by systemd: never
 * on a command line or in the environment. Read only while the node is not enrolled yet, so the
 * file may be deleted afterwards (`weft up` does). A file others may read is refused, as ssh
 * refuses a private key: the key would already be exposed.
 */
import { readFile, stat } from "node:fs/promises";
import { AgentError } from "../errors.js";

/** The longest join key accepted; the controller's are far shorter. */
const MAX_JOIN_KEY_BYTES = 4096;

export async function readJoinKeyFile(path: string): Promise<string> {
  let mode: number;
  let size: number;
  try {
    ({ mode, size } = await stat(path));
  } catch (err) {
    throw new AgentError(`cannot read the join key file ${path}: ${(err as Error).message}; write the key there (mode 0600) or run \`weft up --join-key-file <file>\``, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new AgentError(`the join key file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 ${path}, and replace the key if others may have read it`);
  }
  if (size > MAX_JOIN_KEY_BYTES) throw new AgentError(`the join key file ${path} holds ${size} bytes; a join key is one line of at most ${MAX_JOIN_KEY_BYTES}`);
  const key = (await readFile(path, "utf8")).trim();
  if (key === "" || /\s/.test(key)) throw new AgentError(`the join key file ${path} must hold exactly one join key (one line, no spaces), as printed by \`weft keys create\``);
  return key;
}
