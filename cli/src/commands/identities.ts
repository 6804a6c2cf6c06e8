/** `weft identities list`: SPIFFE IDs and the numbers the datapath uses for them. */
import { printJson, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

export async function listIdentities(o: AdminOptions & { json?: boolean }): Promise<void> {
  const list = await (await adminClient(o)).listIdentities();
  if (o.json) return printJson(list);
  printTable(["ID", "SPIFFE ID"], list.map((i) => [String(i.id), i.spiffeId]));
}
