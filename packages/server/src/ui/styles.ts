/**
 * Deputy's one stylesheet, served from /assets/. It lives in a module rather than a .css file so
 * the compiled package carries it without a copy step; the CSP forbids inline styles anyway.
 */
export const STYLESHEET = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9;
  --card: #ffffff;
  --text: #1b1f24;
  --muted: #5b6470;
  --border: #d0d7de;
  --accent: #1f5fd6;
  --accent-text: #ffffff;
  --error-bg: #fdecec;
  --error-text: #8a1c1c;
  --notice-bg: #eaf2ff;
  --notice-text: #123a7a;
  --focus: #f0a000;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216;
    --card: #181c22;
    --text: #e6e8eb;
    --muted: #9aa4b0;
    --border: #2e353e;
    --accent: #5b8def;
    --accent-text: #0b0d10;
    --error-bg: #3a1515;
    --error-text: #ffb4b4;
    --notice-bg: #14243f;
    --notice-text: #bcd3ff;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { font-size: 100%; }
body {
  margin: 0;
  min-height: 100vh;
  display: flex;
  flex-direction: column;
  align-items: center;
  background: var(--bg);
  color: var(--text);
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; }
header.site {
  width: 100%;
  max-width: 28rem;
  padding: 2rem 1rem 0.5rem;
  font-weight: 600;
  letter-spacing: 0.02em;
}
main {
  width: 100%;
  max-width: 28rem;
  margin: 0 1rem 2rem;
  padding: 1.75rem 1.5rem;
  background: var(--card);
  border: 1px solid var(--border);
  border-radius: 0.75rem;
}
h1 { font-size: 1.5rem; margin: 0 0 1.25rem; }
p { margin: 0 0 1rem; }
.muted { color: var(--muted); }
form { margin: 0; }
.field { margin-bottom: 1rem; }
label { display: block; font-weight: 600; margin-bottom: 0.35rem; }
input[type="email"], input[type="password"], input[type="text"],
input[type="search"], input[type="datetime-local"], textarea {
  width: 100%;
  padding: 0.6rem 0.75rem;
  font: inherit;
  color: inherit;
  background: var(--bg);
  border: 1px solid var(--border);
  border-radius: 0.5rem;
}
button {
  display: inline-block;
  width: 100%;
  padding: 0.65rem 1rem;
  font: inherit;
  font-weight: 600;
  color: var(--accent-text);
  background: var(--accent);
  border: 0;
  border-radius: 0.5rem;
  cursor: pointer;
}
button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--border); }
a.button {
  display: block;
  box-sizing: border-box;
  padding: 0.65rem 1rem;
  margin-bottom: 0.5rem;
  font-weight: 600;
  text-align: center;
  text-decoration: none;
  color: var(--accent);
  border: 1px solid var(--border);
  border-radius: 0.5rem;
}
.providers { margin-top: 1.5rem; }
input:focus-visible, button:focus-visible, a:focus-visible {
  outline: 3px solid var(--focus);
  outline-offset: 2px;
}
a { color: var(--accent); }
.alert { padding: 0.75rem 1rem; border-radius: 0.5rem; margin-bottom: 1rem; }
.alert.error { background: var(--error-bg); color: var(--error-text); }
.alert.notice { background: var(--notice-bg); color: var(--notice-text); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; margin: 0 0 1.5rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.75rem; }
ul.approvals { list-style: none; padding: 0; margin: 0 0 1rem; }
ul.approvals li { padding: 0.75rem 0; border-top: 1px solid var(--border); }
ul.approvals li p { margin: 0.25rem 0 0; }
/* A tool call's arguments read as one long word of JSON: on a phone they wrap, not overflow. */
ul.scopes li, ul.approvals li { overflow-wrap: anywhere; }
/* Ids (a relationship tuple's, a client's) are long words too, in alerts and in a check's path. */
.alert, ol.path li { overflow-wrap: anywhere; }
.badge {
  display: inline-block;
  margin-left: 0.5rem;
  padding: 0 0.4rem;
  font-size: 0.8rem;
  color: var(--error-text);
  background: var(--error-bg);
  border-radius: 0.25rem;
}
pre { overflow-x: auto; max-width: 100%; font-size: 0.85rem; }
.binding strong { font-size: 1.2rem; letter-spacing: 0.05em; }
input[type="url"] {
  width: 100%;
  padding: 0.6rem 0.75rem;
  font: inherit;
  color: inherit;
  background: var(--bg);
  border: 1px solid var(--border);
  border-radius: 0.5rem;
}
form + p { margin-top: 1rem; }
label.check { display: flex; gap: 0.5rem; align-items: center; font-weight: 400; }
dl.facts { grid-template-columns: 1fr; gap: 0.15rem; }
dl.facts dd { margin-bottom: 0.5rem; }
/* The operator console (/admin): wider pages, a navigation bar, lists that wrap on a phone. */
body.wide header.site, body.wide main { max-width: 64rem; }
body.wide main { width: calc(100% - 2rem); }
header.site nav ul {
  list-style: none;
  display: flex;
  flex-wrap: wrap;
  gap: 0.25rem 1.25rem;
  padding: 0;
  margin: 0.5rem 0 0;
  font-weight: 400;
}
header.site nav a { display: inline-block; padding: 0.25rem 0; }
header.site nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
ul.rows { list-style: none; padding: 0; margin: 0 0 1rem; }
ul.rows li { padding: 0.6rem 0; border-top: 1px solid var(--border); overflow-wrap: anywhere; }
ul.rows li p { margin: 0.15rem 0 0; }
ul.stats {
  display: grid;
  grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr));
  gap: 0.75rem;
  list-style: none;
  padding: 0;
  margin: 0 0 1.5rem;
}
ul.stats a {
  display: block;
  padding: 0.75rem 1rem;
  border: 1px solid var(--border);
  border-radius: 0.5rem;
  text-decoration: none;
}
ul.stats strong { display: block; font-size: 1.6rem; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0 0 1rem; }
.actions button, .actions a.button, button.inline { width: auto; margin: 0; }
button.danger { background: var(--error-text); color: var(--card); }
form.filters {
  display: grid;
  grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr));
  gap: 0 1rem;
  margin-bottom: 1rem;
}
textarea { font-family: ui-monospace, monospace; font-size: 0.9rem; min-height: 8rem; }
fieldset { border: 1px solid var(--border); border-radius: 0.5rem; margin: 0 0 1rem; padding: 0.5rem 1rem; }
legend { font-weight: 600; padding: 0 0.25rem; }
select:focus-visible, textarea:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
ul.actions { list-style: none; padding: 0; }
[hidden] { display: none !important; }
.passkey { margin-top: 1.5rem; }
ul.passkeys { list-style: none; padding: 0; margin: 0 0 1rem; }
ul.passkeys li { padding: 0.75rem 0; border-top: 1px solid var(--border); overflow-wrap: anywhere; }
ul.passkeys li p { margin: 0 0 0.5rem; }
/* Pickers (the console's policy simulation) look like the text fields and fit a phone. */
select {
  width: 100%;
  max-width: 100%;
  padding: 0.6rem 0.75rem;
  font: inherit;
  color: inherit;
  background: var(--bg);
  border: 1px solid var(--border);
  border-radius: 0.5rem;
}
pre:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
/* The person's pages: their sessions (account) and their agents' grants. */
ul.sessions, ul.grants { list-style: none; padding: 0; margin: 0 0 1rem; }
ul.sessions li, ul.grants li { padding: 0.75rem 0; border-top: 1px solid var(--border); overflow-wrap: anywhere; }
ul.sessions li p { margin: 0 0 0.5rem; }
.tag {
  display: inline-block;
  margin-left: 0.5rem;
  padding: 0 0.4rem;
  font-size: 0.8rem;
  color: var(--notice-text);
  background: var(--notice-bg);
  border-radius: 0.25rem;
}
.console-link { margin-top: 1rem; }
blockquote.agreed { margin: 0 0 1rem; padding: 0.5rem 0.75rem; border-left: 3px solid var(--border); }
blockquote.agreed ul { margin: 0.25rem 0 0; padding-left: 1.25rem; }
`
