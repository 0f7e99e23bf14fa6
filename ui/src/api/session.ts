// Browser sign-in (the server's /auth/session): the token goes into an HttpOnly cookie the page
// cannot read; the page only learns whether auth is on and who is signed in.

export interface Session {
  auth: boolean;
  signedIn: boolean;
  user?: string;
  isAdmin?: boolean;
}

interface Answer {
  auth: boolean;
  signed_in: boolean;
  user?: string;
  is_admin?: boolean;
  message?: string;
}

const of = (a: Answer): Session => ({ auth: a.auth, signedIn: a.signed_in, user: a.user, isAdmin: a.is_admin });

export async function getSession(): Promise<Session> {
  const res = await fetch("/auth/session", { credentials: "same-origin" });
  if (!res.ok) return { auth: false, signedIn: false };
  return of(await res.json());
}

export async function signIn(token: string): Promise<Session> {
  const res = await fetch("/auth/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const body = (await res.json()) as Answer;
  if (!res.ok) throw new Error(body.message || `sign-in failed (HTTP ${res.status})`);
  return of(body);
}

export async function signOut(csrf: string): Promise<void> {
  await fetch("/auth/session", { method: "DELETE", credentials: "same-origin", headers: { "x-csrf-token": csrf } });
}
