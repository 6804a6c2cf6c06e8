/** Errors of backup and restore: each says what failed and what to do. */

/** A backup or restore step failed (the store, a file, the archive); the message names the step. */
export class BackupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BackupError";
  }
}

/** The target store (or state directory) already holds Weft state: restoring would overwrite it. */
export class RestoreTargetNotEmptyError extends BackupError {
  constructor(readonly found: string[]) {
    super(
      `the target is not empty (${found.slice(0, 5).join(", ")}${found.length > 5 ? `, and ${found.length - 5} more` : ""}): ` +
        "restore into a fresh store and state directory, or pass --force to replace what is there",
    );
    this.name = "RestoreTargetNotEmptyError";
  }
}
