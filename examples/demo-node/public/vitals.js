// Page-load beacon: Largest Contentful Paint (web-vitals) and the navigation's load time, posted
// once per page view to the front door's /api/beacon with navigator.sendBeacon.
// The body is JSON sent as text/plain (a CORS-safelisted type: no preflight for a cross-origin beacon).
import { onLCP } from '/vendor/web-vitals.js';

const cfg = document.querySelector('script[data-beacon]').dataset;
let lcpMs = null;
let sent = false;

const ms = (v) => (v === null || v === undefined ? null : Math.round(v * 10) / 10);

function send() {
  const [nav] = performance.getEntriesByType('navigation');
  if (sent || !nav || !(nav.loadEventEnd > 0)) return;
  sent = true;
  const body = {
    service: cfg.service, page: location.pathname, lcp_ms: ms(lcpMs), load_ms: ms(nav.loadEventEnd),
    ttfb_ms: ms(nav.responseStart), dom_content_loaded_ms: ms(nav.domContentLoadedEventEnd),
  };
  const ok = navigator.sendBeacon(cfg.beacon, new Blob([JSON.stringify(body)], { type: 'text/plain' }));
  document.documentElement.dataset.beacon = ok ? 'sent' : 'refused';
}

onLCP((metric) => { lcpMs = metric.value; }, { reportAllChanges: true });
// after the load event has ended (loadEventEnd is 0 inside it) and LCP has had a moment to settle;
// or when the page goes away first
addEventListener('load', () => setTimeout(send, 300));
addEventListener('pagehide', send);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') send(); });
