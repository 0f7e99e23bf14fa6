// Sign-in with an API token (`tracklane auth token create`). The token is posted once to the server,
// which keeps it in an HttpOnly cookie: it never reaches the URL, storage or the page's scripts.
import { useState } from "preact/hooks";
import { type Session, signIn } from "../api/session";

export function SignInPage({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <section class="page narrow">
      <h1>Sign in</h1>
      <p class="muted">This server requires an API token. Create one with <code>tracklane tokens create</code>.</p>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError("");
          try {
            onSignedIn(await signIn(token));
            setToken("");
          } catch (err) {
            setError(err instanceof Error ? err.message : String(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label>
          API token
          <input
            type="password"
            autocomplete="off"
            required
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={busy || !token.trim()}>
          Sign in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
