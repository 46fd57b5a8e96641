// mailpulse number formatting for the dashboard: the JavaScript twin of schemas/outcomes.py's
// human_duration and human_rate (the page cannot import Python; a test runs both on the same values).
"use strict";

const MailpulseFormat = (() => {
  const UNITS = [["s", 1e3], ["min", 60e3], ["h", 3600e3], ["d", 86400e3]];
  const missing = (v) => v === null || v === undefined;

  // Whole ms below a second, else one decimal of the largest unit reached, moving up when the rounded
  // figure would reach the next unit (59,999 ms is "1.0 min", not "60.0 s").
  function duration(ms) {
    if (missing(ms)) return "–";
    if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
    let i = 0;
    for (let j = 1; j < UNITS.length; j++) if (ms >= UNITS[j][1]) i = j;
    if (i + 1 < UNITS.length && Number((ms / UNITS[i][1]).toFixed(1)) >= UNITS[i + 1][1] / UNITS[i][1]) i += 1;
    const value = (ms / UNITS[i][1]).toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    return `${value} ${UNITS[i][0]}`;
  }

  const rate = (value, digits = 2) => (missing(value) ? "–" : `${(value * 100).toFixed(digits)}%`);
  const int = (n) => (missing(n) ? "–" : Number(n).toLocaleString("en-US"));

  return { duration, rate, int };
})();

if (typeof module !== "undefined") module.exports = MailpulseFormat;
