/**
 * The dashboard's own stylesheet and script, served from /dashboard/assets (the
 * Content-Security-Policy allows scripts and styles from the service only), and
 * uPlot's, read from its npm package.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const DASHBOARD_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
a{color:#0b5cad}
header{background:#a3000f;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem}
header strong{font-size:1.05rem;margin-right:auto}
nav{display:flex;flex-wrap:wrap;gap:.25rem}
nav a{color:#fff;text-decoration:none;padding:.35rem .6rem;border-radius:6px}
nav a[aria-current=page]{background:rgba(255,255,255,.22);font-weight:600}
nav form{display:inline}
nav button{background:none;border:1px solid rgba(255,255,255,.6);color:#fff;padding:.3rem .6rem;border-radius:6px;font:inherit;cursor:pointer}
main{padding:1rem;max-width:1200px;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem}
.card{background:#fff;border-radius:8px;padding:.7rem .8rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card dt{font-size:.85rem;color:#555}
.card dd{margin:.15rem 0 0;font-size:1.45rem;font-weight:650}
.card dd.text{font-size:1.05rem}
.panel.paused{border-left:4px solid #b3261e}
.panel p{margin:.2rem 0}
.card dd small{font-size:.8rem;font-weight:400;color:#555}
.panel{background:#fff;border-radius:8px;padding:.8rem;box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:.8rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e3e5e8;vertical-align:top}
th{background:#fafbfc;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ok{color:#137333}.warn{color:#b06000}.bad{color:#b3261e}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;font-size:.8rem;background:#e8eaed}
.badge.bad{background:#fce8e6}.badge.ok{background:#e6f4ea}.badge.warn{background:#fef7e0}
form.inline{display:inline}
.grow{flex:1 1 220px}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
label{display:flex;flex-direction:column;font-size:.85rem;color:#444;gap:.2rem}
input,select,textarea{font:inherit;padding:.45rem .55rem;border:1px solid #c4c7cc;border-radius:6px;background:#fff;min-width:0}
button{font:inherit;padding:.45rem .8rem;border-radius:6px;border:1px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b5cad}
button.danger{background:#b3261e;border-color:#b3261e}
.flash{padding:.6rem .8rem;border-radius:8px;margin-bottom:.8rem;background:#e6f4ea}
.flash.error{background:#fce8e6}
.timeline{list-style:none;margin:0;padding:0}
.timeline li{padding:.5rem .6rem;border-left:3px solid #c4c7cc;margin:0 0 .4rem .3rem;background:#fff;border-radius:0 6px 6px 0}
.timeline li.in{border-color:#137333}.timeline li.out{border-color:#0b5cad}.timeline li.ev{border-color:#9aa0a6;font-size:.9rem}
.muted{color:#5f6368;font-size:.85rem}
#chart{width:100%;min-height:320px}
.login{max-width:360px;margin:3rem auto}
.login form{display:flex;flex-direction:column;gap:.7rem}
@media (max-width:600px){main{padding:.6rem}.card dd{font-size:1.25rem}th,td{padding:.35rem .35rem}}
`;

/** Draws the 7-day chart from the JSON the page embeds; a table below carries the same numbers. */
export const DASHBOARD_JS = `
(function () {
  var el = document.getElementById('chart');
  var data = document.getElementById('chart-data');
  if (!el || !data || typeof uPlot === 'undefined') return;
  var d = JSON.parse(data.textContent);
  function size() { return { width: Math.max(280, el.clientWidth), height: el.clientWidth < 500 ? 260 : 340 }; }
  var s = size();
  // Hours and days in the business time zone, 24-hour clock (pt-BR).
  var hourOf = new Intl.DateTimeFormat('pt-BR', { timeZone: d.timeZone, hour: '2-digit', hourCycle: 'h23' });
  var dayOf = new Intl.DateTimeFormat('pt-BR', { timeZone: d.timeZone, day: '2-digit', month: '2-digit' });
  var fullOf = new Intl.DateTimeFormat('pt-BR', { timeZone: d.timeZone, weekday: 'short', day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  var plot = new uPlot({
    width: s.width, height: s.height,
    series: [
      { label: d.labels.hour, value: function (u, v) { return v == null ? '--' : fullOf.format(new Date(v * 1000)); } },
      { label: d.labels.sends, stroke: '#0b5cad', width: 2 },
      { label: d.labels.replies, stroke: '#137333', width: 2 },
      { label: d.labels.optOuts, stroke: '#b3261e', width: 2 }
    ],
    axes: [{ values: function (u, splits) {
      // Ticks a day or more apart (a narrow screen): the day; otherwise the hour, and the day at midnight.
      var daily = splits.length > 1 && splits[1] - splits[0] >= 86400;
      return splits.map(function (t) {
        var at = new Date(t * 1000), h = hourOf.format(at);
        return daily || h === '00' ? dayOf.format(at) : h + 'h';
      });
    } }, {}]
  }, [d.hours, d.sends, d.replies, d.optOuts], el);
  window.addEventListener('resize', function () { plot.setSize(size()); });
})();
`;

export function uplotAsset(file: 'uPlot.iife.min.js' | 'uPlot.min.css'): string {
  return readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
}
