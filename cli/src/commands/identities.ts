/** `weft identities list`: SPIFFE IDs and the numbers the datapath uses for them. */
import type { Command } from "commander";
import { printJson, printTable } from "../output.js";
import { addAdminOptions, adminClient, type AdminOptions } from "./admin-client.js";

export function registerIdentities(program: Command): void {
  const identities = program.command("identities").description("identities allocated by the controller");
  addAdminOptions(identities.command("list").description("list identities: number and SPIFFE ID"))
    .option("--json", "print JSON")
    .action(async (o: AdminOptions & { json?: boolean }) => {
      const list = await (await adminClient(o)).listIdentities();
      if (o.json) return printJson(list);
      printTable(["ID", "SPIFFE ID"], list.map((i) => [String(i.id), i.spiffeId]));
    });
}
