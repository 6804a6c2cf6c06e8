/**
 * Backup and restore of a controller: every Weft bucket (JetStream stream snapshots, revisions
 * kept) and the state files agents' credentials chain to. See controller/README.md, "Backup and
 * restore".
 */
export { backupController, type BackupResult } from "./backup.js";
export { restoreController, type RestoreOptions, type RestoreResult } from "./restore.js";
export { BackupError, RestoreTargetNotEmptyError } from "./errors.js";
export { STATE_DIRS, STATE_FILES } from "./files.js";
