// The shell: sign-in gate, header navigation, theme, and the routes of every page.
import { useEffect, useState } from "preact/hooks";
import { LocationProvider, Route, Router, useLocation } from "preact-iso";
import { csrfToken, setUnauthenticatedHandler } from "./api/client";
import { getSession, type Session, signOut } from "./api/session";
import { ComparePage } from "./pages/compare";
import { ExperimentsPage } from "./pages/experiments";
import { ModelPage } from "./pages/model";
import { ModelsPage } from "./pages/models";
import { NotFound } from "./pages/not-found";
import { RunPage } from "./pages/run";
import { RunsPage } from "./pages/runs";
import { SignInPage } from "./pages/sign-in";
import { VersionPage } from "./pages/version";

type Theme = "dark" | "light";

function initialTheme(): Theme {
  const saved = localStorage.getItem("tracklane.theme");
  if (saved === "dark" || saved === "light") return saved;
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

function Header({ session, theme, setTheme }: { session: Session; theme: Theme; setTheme: (t: Theme) => void }) {
  const { path } = useLocation();
  const current = (prefix: string) =>
    (prefix === "/" ? path === "/" || path.startsWith("/experiments") || path.startsWith("/runs") || path.startsWith("/compare") : path.startsWith(prefix))
      ? "page"
      : undefined;
  return (
    <header class="topbar">
      <a class="brand" href="/">
        Tracklane
      </a>
      <nav aria-label="Main">
        <a href="/" aria-current={current("/")}>
          Experiments
        </a>
        <a href="/models" aria-current={current("/models")}>
          Models
        </a>
      </nav>
      <div class="topbar-end">
        <button
          type="button"
          class="ghost"
          aria-pressed={theme === "dark"}
          onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
        >
          Dark theme
        </button>
        {session.signedIn && (
          <>
            <span class="muted">
              Signed in as <strong>{session.user}</strong>
            </span>
            <button
              type="button"
              class="ghost"
              onClick={async () => {
                await signOut(csrfToken());
                window.location.assign("/"); // the app shows sign-in when no session
              }}
            >
              Sign out
            </button>
          </>
        )}
      </div>
    </header>
  );
}

function Routes() {
  return (
    <Router>
      <Route path="/" component={ExperimentsPage} />
      <Route path="/experiments/:ids" component={RunsPage} />
      <Route path="/runs/:runId" component={RunPage} />
      <Route path="/compare" component={ComparePage} />
      <Route path="/models" component={ModelsPage} />
      <Route path="/models/:name" component={ModelPage} />
      <Route path="/models/:name/versions/:version" component={VersionPage} />
      <Route default component={NotFound} />
    </Router>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [theme, setThemeState] = useState<Theme>(initialTheme);
  const setTheme = (t: Theme) => {
    localStorage.setItem("tracklane.theme", t);
    setThemeState(t);
  };
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    getSession().then(setSession, () => setSession({ auth: false, signedIn: false }));
    setUnauthenticatedHandler(() => setSession((s) => (s ? { ...s, signedIn: false } : s)));
  }, []);
  if (!session) return <p class="loading" role="status">Loading…</p>;
  const needsSignIn = session.auth && !session.signedIn;
  return (
    <LocationProvider>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header session={session} theme={theme} setTheme={setTheme} />
      <main id="main" tabIndex={-1}>
        {needsSignIn ? <SignInPage onSignedIn={setSession} /> : <Routes />}
      </main>
    </LocationProvider>
  );
}
