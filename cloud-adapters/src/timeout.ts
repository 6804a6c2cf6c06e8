/**
 * Bounds one cloud call: some SDK transports never give up on a server that accepts the connection
 * and never answers (gax's REST transport; Azure's pipeline without a per-request timeout). The
 * call gets its own AbortSignal (aborted when the caller's is, or when the timer fires, which
 * cancels the HTTP request); a timeout is an InventoryTransientError (code "timeout") that the
 * adapter's retry treats like any transient failure, an abort by the caller is final.
 */
import { InventoryError, InventoryTransientError } from "./errors.js";

export function bounded<T>(run: (signal: AbortSignal) => Promise<T> & { cancel?: () => void }, ms: number, label: string, signal: AbortSignal | undefined): Promise<T> {
  const own = new AbortController();
  const call = run(own.signal);
  const cancel = () => {
    own.abort();
    call.cancel?.();
  };
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      cancel();
      reject(new InventoryError(`${label}: aborted`, { code: "aborted", retryable: false, cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      cancel();
      reject(new InventoryTransientError(`${label}: no answer in ${ms} ms`, { code: "timeout" }));
    }, ms);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    call.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    });
  });
}
