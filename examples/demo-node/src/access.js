'use strict';
// Who may change the faults: the admin token (Authorization: Bearer or X-API-Key), or, in the local
// stack, a caller on loopback (directly, or through a proxy on loopback for a loopback client).
const { timingSafeEqual } = require('node:crypto');

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

function hasAdminToken(req, token) {
  if (!token) return false;
  const auth = req.headers.authorization || '';
  const presented = auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : (req.headers['x-api-key'] || '').trim();
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function isTrustedLoopback(req) {
  if (!LOOPBACK.test(req.socket.remoteAddress || '')) return false;
  const forwarded = (req.headers['x-forwarded-for'] || '').split(',').map((h) => h.trim()).filter(Boolean);
  return forwarded.every((h) => LOOPBACK.test(h));
}

module.exports = { hasAdminToken, isTrustedLoopback };
