'use strict';
// The shop's home page (HTML): the items, and the page-load beacon (public/vitals.js + web-vitals).

const escape = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function homePage({ s, user, gamification, items }) {
  const rows = items.map((i) => `<li>${escape(i.name)} <small>${escape(i.points)} pts</small></li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo shop (Node)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>Demo shop</h1>
<p id="who">Hello ${escape(user)} &mdash; ${escape(s.instance)} ${escape(s.release)};
gamification is <b id="gamification">${gamification ? 'on' : 'off'}</b>.</p>
<ul id="items">${rows}</ul>
<script type="module" src="/static/vitals.js" data-beacon="${escape(s.beaconUrl)}" data-service="${escape(s.service)}"></script>
</body></html>
`;
}

module.exports = { homePage };
