export function NotFound() {
  return (
    <section class="page">
      <h1>Not found</h1>
      <p>
        No page here. Go to the <a href="/">experiments</a> or the <a href="/models">models</a>.
      </p>
    </section>
  );
}
