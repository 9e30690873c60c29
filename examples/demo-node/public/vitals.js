// Page-load beacon: Largest Contentful Paint (web-vitals) and the navigation's load time, posted
// once per page view to the front door's /api/beacon with navigator.sendBeacon.
// The body is JSON sent as text/plain (a CORS-safelisted type: no preflight for a cross-origin beacon).
import { onLCP } from '/vendor/web-vitals.js';

const cfg = document.currentScript?.dataset ?? document.querySelector('script[data-beacon]').dataset;
let lcpMs = null;
let sent = false;

function loadMs() {
  const [nav] = performance.getEntriesByType('navigation');
  return nav && nav.loadEventEnd > 0 ? nav.loadEventEnd : null;
}

function send() {
  const load = loadMs();
  if (sent || load === null) return;
  sent = true;
  const body = { service: cfg.service, page: location.pathname, lcp_ms: lcpMs, load_ms: Math.round(load * 10) / 10 };
  if (body.lcp_ms !== null) body.lcp_ms = Math.round(body.lcp_ms * 10) / 10;
  const ok = navigator.sendBeacon(cfg.beacon, new Blob([JSON.stringify(body)], { type: 'text/plain' }));
  document.documentElement.dataset.beacon = ok ? 'sent' : 'refused';
}

onLCP((metric) => { lcpMs = metric.value; }, { reportAllChanges: true });
// after the load event has ended (loadEventEnd is 0 inside it) and LCP has had a moment to settle;
// or when the page goes away first
addEventListener('load', () => setTimeout(send, 300));
addEventListener('pagehide', send);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') send(); });
