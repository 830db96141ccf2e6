import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getServices } from './api';
import { registerServices } from './colors';
import { Notice } from './components/common';
import { onTimeZoneChange, setTimeZoneMode, timeZoneMode } from './format';
import { ComparePage } from './pages/compare';
import { DependenciesPage } from './pages/deps';
import { SearchPage } from './pages/search';
import { TracePage } from './pages/trace';
import { UploadPage } from './pages/upload';
import { Link, navigate, useLocation } from './router';
import './styles.css';

function TraceLookup() {
  const [id, setId] = useState('');
  return (
    <form
      class="trace-lookup"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const clean = id.trim().toLowerCase();
        if (clean) navigate(`/trace/${encodeURIComponent(clean)}`);
        setId('');
      }}
    >
      <label class="sr-only" for="trace-lookup">
        Trace ID
      </label>
      <input
        id="trace-lookup"
        type="search"
        placeholder="Look up trace ID…"
        value={id}
        onInput={(e) => setId(e.currentTarget.value)}
        spellcheck={false}
        autocomplete="off"
      />
    </form>
  );
}

function TimeZoneToggle() {
  const mode = timeZoneMode();
  return (
    <button
      type="button"
      class="btn btn-small tz-toggle"
      data-testid="tz-toggle"
      aria-label={`Times are shown in ${mode === 'utc' ? 'UTC' : 'local time'}; switch to ${mode === 'utc' ? 'local time' : 'UTC'}`}
      title="Show times in UTC or in local time"
      onClick={() => setTimeZoneMode(mode === 'utc' ? 'local' : 'utc')}
    >
      {mode === 'utc' ? 'UTC' : 'Local time'}
    </button>
  );
}

function App() {
  const loc = useLocation();
  const [, setTick] = useState(0);
  useEffect(() => onTimeZoneChange(() => setTick((t) => t + 1)), []);
  // Distinct colours for the server's services once their list is known.
  useEffect(() => {
    getServices()
      .then((names) => {
        registerServices(names);
        setTick((t) => t + 1);
      })
      .catch(() => {});
  }, []);
  const path = loc.path.replace(/\/+$/, '') || '/';
  let page;
  let section = '';
  if (path === '/' || path === '/search') {
    section = 'search';
    page = <SearchPage query={loc.query} />;
  } else if (path.startsWith('/trace/') && path.includes('...')) {
    section = 'compare';
    const [a, b] = path.slice('/trace/'.length).split('...').map((x) => decodeURIComponent(x));
    page = <ComparePage key={`${a}...${b}`} a={a} b={b ?? ''} />;
  } else if (path === '/compare') {
    section = 'compare';
    page = <ComparePage a="" b="" />;
  } else if (path.startsWith('/trace/')) {
    section = 'trace';
    const id = decodeURIComponent(path.slice('/trace/'.length));
    page = <TracePage key={id} id={id} query={loc.query} />;
  } else if (path === '/upload') {
    section = 'upload';
    page = <UploadPage query={loc.query} />;
  } else if (path === '/dependencies') {
    section = 'dependencies';
    page = <DependenciesPage query={loc.query} />;
  } else {
    page = (
      <main class="page">
        <Notice kind="empty" title="Page not found">
          <p>
            There is no page at <code>{loc.path}</code>. Go to <Link href="/search">Search</Link> or{' '}
            <Link href="/dependencies">Dependencies</Link>.
          </p>
        </Notice>
      </main>
    );
  }
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link href="/search" class="brand" aria-label="Waymark home">
          <img src="/assets/favicon.svg" alt="" width={20} height={20} />
          Waymark
        </Link>
        <nav aria-label="Main">
          <Link href="/search" aria-current={section === 'search' ? 'page' : undefined}>
            Search
          </Link>
          <Link href="/compare" aria-current={section === 'compare' ? 'page' : undefined}>
            Compare
          </Link>
          <Link href="/dependencies" aria-current={section === 'dependencies' ? 'page' : undefined}>
            Dependencies
          </Link>
          <Link href="/upload" aria-current={section === 'upload' ? 'page' : undefined}>
            Upload
          </Link>
        </nav>
        <TraceLookup />
        <TimeZoneToggle />
      </header>
      <div id="main" class="main">
        {page}
      </div>
    </>
  );
}

render(<App />, document.getElementById('app')!);
