/**
 * Enrollment over the controller's REST API. Network failures and 5xx are
 * retryable; a 4xx is final and carries the controller's message.
 */
import { ApiError, EnrollResponse, type EnrollRequest } from "@weft/protocol";
import { ControllerUnavailableError, EnrollmentRejectedError } from "../errors.js";

export async function enroll(controllerUrl: string, req: EnrollRequest, timeoutMs = 10_000): Promise<EnrollResponse> {
  const url = new URL("/v1/enroll", controllerUrl);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(req),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new ControllerUnavailableError(`enroll: cannot reach controller at ${url.origin}`, err);
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (res.ok) {
    const parsed = EnrollResponse.safeParse(body);
    if (!parsed.success) throw new ControllerUnavailableError(`enroll: controller answered with an unexpected body (${parsed.error.message})`);
    return parsed.data;
  }
  const err = ApiError.safeParse(body);
  const message = err.success ? err.data.message : `HTTP ${res.status}`;
  if (res.status >= 500) throw new ControllerUnavailableError(`enroll: controller failed: ${message}`);
  throw new EnrollmentRejectedError(`enroll: rejected by controller: ${message}`, res.status, err.success ? err.data.error : "unknown");
}
