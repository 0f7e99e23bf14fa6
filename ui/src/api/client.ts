// One Connect transport to the server that served this page; clients for each protobuf service.
// Binary protobuf on the wire (packed metric columns stay compact); the session cookie rides along
// by itself and state-changing calls echo the CSRF cookie in a header (the server checks both).
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ArtifactService } from "../gen/tracklane/v1/artifacts_pb";
import { AuthService } from "../gen/tracklane/v1/auth_pb";
import { RegistryService } from "../gen/tracklane/v1/registry_pb";
import { TrackingService } from "../gen/tracklane/v1/tracking_pb";

export const CSRF_HEADER = "x-csrf-token";

/** The CSRF cookie's value (the `__Host-` form over TLS), or "" before sign-in. */
export function csrfToken(cookies: string = document.cookie): string {
  for (const part of cookies.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "tracklane_csrf" || name === "__Host-tracklane_csrf") return rest.join("=");
  }
  return "";
}

const csrf: Interceptor = (next) => async (req) => {
  const token = csrfToken();
  if (token) req.header.set(CSRF_HEADER, token);
  return next(req);
};

/** Any call answered UNAUTHENTICATED sends the page to sign-in (the token expired or was revoked). */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}
const signInOnExpiry: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.Unauthenticated) onUnauthenticated();
    throw err;
  }
};

const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [csrf, signInOnExpiry],
});

export const tracking: Client<typeof TrackingService> = createClient(TrackingService, transport);
export const registry: Client<typeof RegistryService> = createClient(RegistryService, transport);
export const artifacts: Client<typeof ArtifactService> = createClient(ArtifactService, transport);
export const auth: Client<typeof AuthService> = createClient(AuthService, transport);
