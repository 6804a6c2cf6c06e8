/** The numeric id of a group from /etc/group, or undefined when the host has no such group. */
import { readFile } from "node:fs/promises";

export async function groupId(name: string, file = "/etc/group"): Promise<number | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}
