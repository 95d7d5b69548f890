/**
 * The dashboard's pages, server-rendered, in Brazilian Portuguese (the campaign team
 * reads them). Every action is a plain form (POST, with the CSRF token) that redirects
 * back with a notice, so the pages work without JavaScript; only the chart uses it.
 */
import type { LeadTimeline } from '../leads/read-timeline.js';
import type { SendingPause } from '../followups/operator-pause.js';
import { type Html, html, jsonForScript, raw } from './html.js';
import type { ActivityPage, FailuresPage, FanMatch, FunnelCounts, FunnelPage, FunnelRow, NowPage } from './read-dashboard.js';

export interface PageFrame {
  csrf: string;
  timeZone: string;
  notice?: { kind: 'ok' | 'error'; text: string } | null;
}

type Tab = 'now' | 'activity' | 'funnel' | 'fans' | 'failures';
const TABS: Array<[Tab, string, string]> = [
  ['now', '/dashboard/now', 'Agora'],
  ['activity', '/dashboard/activity', 'Envios'],
  ['funnel', '/dashboard/funnel', 'Funil'],
  ['fans', '/dashboard/fans', 'Fãs'],
  ['failures', '/dashboard/failures', 'Falhas'],
];

export const STATUS_LABELS: Record<string, string> = {
  pending: 'Pendentes',
  queued: 'Na fila',
  sending: 'Enviando',
  executed: 'Enviados',
  failed: 'Falharam',
  cancelled: 'Cancelados',
};

const REASON_LABELS: Record<string, string> = {
  operator_paused: 'pausado pela equipe',
  sending_paused: 'envio pausado',
  evolution_unauthorized: 'chave da Evolution recusada',
  evolution_instance_not_found: 'instância da Evolution não encontrada',
  whatsapp_disconnected: 'WhatsApp desconectado',
  webhooks_silent: 'webhooks em silêncio',
  retries_exhausted: 'tentativas esgotadas',
  ambiguous_send: 'envio incerto',
  rejected: 'recusado pelo WhatsApp',
  lead_replied: 'fã respondeu',
  opted_out: 'fã pediu para sair',
  handoff: 'atendimento humano',
  converted: 'virou sócio',
  operator: 'cancelado pela equipe',
  operator_retry: 'nova tentativa (equipe)',
  window: 'fora do horário',
};
const reasonLabel = (reason: string | null | undefined) => (reason ? (REASON_LABELS[reason] ? `${REASON_LABELS[reason]} (${reason})` : reason) : '—');

const number = (n: number) => n.toLocaleString('pt-BR');
const percent = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toLocaleString('pt-BR', { maximumFractionDigits: 1 })}%` : '—');

function formatAt(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return '—';
  return new Intl.DateTimeFormat('pt-BR', { timeZone, day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));
}

function csrfField(frame: PageFrame) {
  return html`<input type="hidden" name="_csrf" value="${frame.csrf}">`;
}

export function layout(frame: PageFrame, tab: Tab | null, title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Follow-ups Náutico</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
</head><body>
<header><strong>Follow-ups · Náutico</strong>
<nav>${TABS.map(([id, href, label]) => html`<a href="${href}"${id === tab ? raw(' aria-current="page"') : ''}>${label}</a>`)}
<form method="post" action="/dashboard/logout">${csrfField(frame)}<button type="submit" data-action="logout">Sair</button></form></nav>
</header>
<main>
${frame.notice ? html`<p class="flash${frame.notice.kind === 'error' ? ' error' : ''}" role="status">${frame.notice.text}</p>` : ''}
<h1>${title}</h1>
${body}
</main></body></html>`;
}

export function loginPage(options: { error?: string; next?: string; passwordEnabled: boolean }): Html {
  return html`<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Entrar · Follow-ups Náutico</title><link rel="stylesheet" href="/dashboard/assets/dashboard.css"></head>
<body><header><strong>Follow-ups · Náutico</strong></header>
<main class="login"><h1>Entrar</h1>
${options.error ? html`<p class="flash error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/dashboard/login">
<input type="hidden" name="next" value="${options.next ?? ''}">
<label>${options.passwordEnabled ? 'Senha do painel ou token da API' : 'Token da API'}
<input type="password" name="secret" autocomplete="current-password" required autofocus></label>
<button type="submit">Entrar</button>
</form></main></body></html>`;
}

function pauseForms(frame: PageFrame, campaigns: string[]): Html {
  return html`<div class="panel">
<form method="post" action="/dashboard/actions/pause" class="row">${csrfField(frame)}
<label>Pausar
<select name="scope" aria-label="O que pausar"><option value="all">todos os envios</option>${campaigns.map((c) => html`<option value="campaign:${c}">campanha ${c}</option>`)}</select></label>
<label>Motivo <input name="reason" required maxlength="500" placeholder="ex.: revisão do texto"></label>
<label>Quem <input name="who" maxlength="100" placeholder="seu nome"></label>
<button type="submit" class="danger" data-action="pause">Pausar</button>
</form></div>`;
}

function pauseList(frame: PageFrame, pauses: SendingPause[]): Html {
  if (pauses.length === 0) return html`<p class="ok" data-sending="active">Envios ativos: nenhuma pausa da equipe.</p>`;
  return html`<div data-sending="paused">${pauses.map(
    (p) => html`<div class="panel paused"><p><span class="badge bad">Em pausa: ${p.scope === 'all' ? 'todos os envios' : `campanha ${p.campaign}`}</span></p>
<p><strong>${p.reason}</strong></p><p class="muted">${p.who} · desde ${formatAt(p.at, frame.timeZone)}</p>
<form method="post" action="/dashboard/actions/resume" class="row">${csrfField(frame)}
<input type="hidden" name="scope" value="${p.scope === 'all' ? 'all' : `campaign:${p.campaign}`}">
<label class="grow">Motivo para retomar (opcional) <input name="reason" maxlength="500"></label>
<button type="submit" data-action="resume">Retomar</button></form></div>`,
  )}</div>`;
}

export function nowPage(frame: PageFrame, data: NowPage, campaigns: string[]): Html {
  const s = data.status;
  const cap = s.today.dailyCap;
  const body = html`
<dl class="cards" data-section="counts">
${Object.entries(STATUS_LABELS).map(([status, label]) => html`<div class="card"><dt>${label}</dt><dd data-count="${status}">${number(s.byStatus[status as keyof typeof s.byStatus] ?? 0)}</dd></div>`)}
</dl>
<p class="muted">Contagens por status de ${Math.round(data.countsAgeMs / 1000)} s atrás.</p>
<dl class="cards">
<div class="card"><dt>Vencem na próxima hora</dt><dd data-count="due-next-hour">${number(s.pending.dueNextHour)}</dd></div>
<div class="card"><dt>Atrasados agora</dt><dd data-count="overdue">${number(s.pending.overdue)}</dd></div>
<div class="card"><dt>Atraso p50 / p99 (última hora)</dt><dd data-count="lateness">${data.lateness.p50Ms === null ? '—' : html`${number(data.lateness.p50Ms)} / ${number(data.lateness.p99Ms ?? 0)} <small>ms</small>`}</dd></div>
<div class="card"><dt>Fila</dt><dd data-count="queue" class="text">${s.queue.mode === 'redis' ? (s.queue.reachable ? 'Redis' : html`<span class="warn">Redis fora — direto</span>`) : 'Direto (sem Redis)'}</dd></div>
<div class="card"><dt>Enviados hoje</dt><dd data-count="sent-today">${number(s.today.sent)}${cap ? html` <small>de ${number(cap)} (limite diário)</small>` : html` <small>sem limite diário</small>`}</dd></div>
</dl>

<h2>Pausas</h2>
${pauseList(frame, data.pauses)}
${pauseForms(frame, campaigns)}

<h2>Números de WhatsApp</h2>
<div class="scroll"><table><thead><tr><th>Número (instância)</th><th>Envio</th><th class="n">Enviadas hoje</th><th>Conexão</th><th>Webhooks</th></tr></thead><tbody>
${data.numbers.map(
  (n) => html`<tr data-number="${n.instance}"><td>${n.instance}</td>
<td>${n.sending === 'active' ? html`<span class="badge ok">ativo</span>` : n.sending === 'retired' ? html`<span class="badge">aposentado</span>` : html`<span class="badge bad">pausado</span> ${reasonLabel(n.reason)}${n.detail ? html`<div class="muted">${n.detail}</div>` : ''}${n.since ? html`<div class="muted">desde ${formatAt(n.since, frame.timeZone)}</div>` : ''}`}</td>
<td class="n">${n.sentToday ?? '—'}${n.dailyCap > 0 ? ` / ${n.dailyCap}` : ''}</td>
<td>${n.connection === 'open' ? html`<span class="ok">conectado</span>` : html`<span class="bad">${n.connection}</span>`}</td>
<td>${n.webhooks === 'flowing' ? html`<span class="ok">chegando</span>` : n.webhooks === 'silent' ? html`<span class="bad">em silêncio (${n.webhooksReason ?? ''})</span>` : html`<span class="muted">não observados</span>`}</td></tr>`,
)}
</tbody></table></div>

<h2>Falhas nas últimas 24 h</h2>
${data.failures24h.length === 0 ? html`<p class="ok">Nenhuma falha.</p>` : html`<div class="scroll"><table data-section="failures-24h"><thead><tr><th>Motivo</th><th class="n">Follow-ups</th></tr></thead><tbody>
${data.failures24h.map((f) => html`<tr><td>${reasonLabel(f.reason)}</td><td class="n">${number(f.count)}</td></tr>`)}</tbody></table></div>
<p><a href="/dashboard/failures">Ver e tentar de novo →</a></p>`}

<h2>Histórico de pausas</h2>
${data.recentPauses.length === 0 ? html`<p class="muted">Nenhuma pausa registrada.</p>` : html`<div class="scroll"><table data-section="pause-history"><thead><tr><th>O quê</th><th>Pausado em</th><th>Motivo</th><th>Quem</th><th>Retomado em</th><th>Motivo</th><th>Quem</th></tr></thead><tbody>
${data.recentPauses.map(
  (p) => html`<tr><td>${p.scope === 'all' ? 'todos os envios' : `campanha ${p.campaign}`}</td><td>${formatAt(p.at, frame.timeZone)}</td><td>${p.reason}</td><td>${p.who}</td>
<td>${p.resumedAt ? formatAt(p.resumedAt, frame.timeZone) : html`<span class="badge bad">em pausa</span>`}</td><td>${p.resumeReason ?? ''}</td><td>${p.resumedBy ?? ''}</td></tr>`,
)}</tbody></table></div>`}`;
  return layout(frame, 'now', 'Agora', body);
}

export function activityPage(frame: PageFrame, data: ActivityPage): Html {
  // Daily totals (in the business time zone) for a table that reads without the chart.
  const days = new Map<string, { sends: number; replies: number; optOuts: number }>();
  const dayOf = new Intl.DateTimeFormat('pt-BR', { timeZone: frame.timeZone, weekday: 'short', day: '2-digit', month: '2-digit' });
  data.hours.forEach((h, i) => {
    const key = dayOf.format(new Date(h * 1000));
    const d = days.get(key) ?? { sends: 0, replies: 0, optOuts: 0 };
    d.sends += data.sends[i]!;
    d.replies += data.replies[i]!;
    d.optOuts += data.optOuts[i]!;
    days.set(key, d);
  });
  const body = html`
<dl class="cards">
<div class="card"><dt>Follow-ups enviados (7 dias)</dt><dd data-total="sends">${number(data.totals.sends)}</dd></div>
<div class="card"><dt>Respostas de fãs (7 dias)</dt><dd data-total="replies">${number(data.totals.replies)}</dd></div>
<div class="card"><dt>Pedidos para sair (7 dias)</dt><dd data-total="opt-outs">${number(data.totals.optOuts)}</dd></div>
</dl>
<h2>Por hora, últimos 7 dias</h2>
<div class="panel"><div id="chart" role="img" aria-label="Gráfico de envios, respostas e saídas por hora"></div></div>
<script type="application/json" id="chart-data">${jsonForScript({ ...data, timeZone: frame.timeZone, labels: { hour: 'Hora', sends: 'Enviados', replies: 'Respostas', optOuts: 'Saídas' } })}</script>
<h2>Por dia</h2>
<div class="scroll"><table><thead><tr><th>Dia</th><th class="n">Enviados</th><th class="n">Respostas</th><th class="n">Saídas</th></tr></thead><tbody>
${[...days.entries()].reverse().map(([day, d]) => html`<tr><td>${day}</td><td class="n">${number(d.sends)}</td><td class="n">${number(d.replies)}</td><td class="n">${number(d.optOuts)}</td></tr>`)}
</tbody></table></div>
<script src="/dashboard/assets/uPlot.iife.min.js"></script>
<script src="/dashboard/assets/dashboard.js"></script>`;
  return layout(frame, 'activity', 'Envios ao longo do tempo', html`<link rel="stylesheet" href="/dashboard/assets/uPlot.min.css">${body}`);
}

function sumCounts(rows: FunnelRow[]): FunnelCounts {
  const total: FunnelCounts = { planned: 0, sent: 0, replied: 0, optedOut: 0, handedOff: 0, converted: 0 };
  for (const r of rows) for (const k of Object.keys(total) as Array<keyof FunnelCounts>) total[k] += r[k];
  return total;
}

function groupBy(rows: FunnelRow[], key: (r: FunnelRow) => string): Array<[string, FunnelCounts]> {
  const groups = new Map<string, FunnelRow[]>();
  for (const r of rows) {
    const k = key(r);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.entries()].map(([k, rs]) => [k, sumCounts(rs)]);
}

function funnelTable(label: string, groups: Array<[string, FunnelCounts]>, section: string): Html {
  return html`<div class="scroll"><table data-funnel="${section}"><thead><tr><th>${label}</th><th class="n">Planejados</th><th class="n">Enviados</th><th class="n">Responderam em 24 h</th><th class="n">Saíram</th><th class="n">Atendimento humano</th><th class="n">Viraram sócios</th></tr></thead><tbody>
${groups.map(
  ([k, c]) => html`<tr data-row="${k}"><td>${k}</td><td class="n" data-col="planned">${number(c.planned)}</td>
<td class="n" data-col="sent">${number(c.sent)} <span class="muted">${percent(c.sent, c.planned)}</span></td>
<td class="n" data-col="replied">${number(c.replied)} <span class="muted">${percent(c.replied, c.sent)}</span></td>
<td class="n" data-col="opted-out">${number(c.optedOut)} <span class="muted">${percent(c.optedOut, c.sent)}</span></td>
<td class="n" data-col="handed-off">${number(c.handedOff)} <span class="muted">${percent(c.handedOff, c.sent)}</span></td>
<td class="n" data-col="converted">${number(c.converted)} <span class="muted">${percent(c.converted, c.sent)}</span></td></tr>`,
)}</tbody></table></div>`;
}

export function funnelPage(frame: PageFrame, data: FunnelPage, periods: readonly number[], ageMs = 0): Html {
  const campaignsShown = [...new Set(data.rows.map((r) => r.campaign))];
  const stepLabel = (r: FunnelRow) => {
    const hours = r.step === null ? undefined : data.stepDelays[r.campaign]?.[r.step];
    return r.step === null ? 'sem etapa' : `etapa ${r.step}${hours !== undefined ? ` (${hours} h)` : ''}`;
  };
  const composerLabel = (c: string | null) => (c === 'llm' ? 'LLM' : c === 'template' ? 'modelo (template)' : c === 'explicit' ? 'texto do agente' : (c ?? 'não enviado'));
  const body = html`
<form method="get" action="/dashboard/funnel" class="row panel">
<label>Período <select name="days">${periods.map((d) => html`<option value="${d}"${d === data.days ? raw(' selected') : ''}>${d === 1 ? 'último dia' : `últimos ${d} dias`}</option>`)}</select></label>
<label>Campanha <select name="campaign"><option value="">todas</option>${data.campaigns.map((c) => html`<option value="${c}"${c === data.campaign ? raw(' selected') : ''}>${c}</option>`)}</select></label>
<button type="submit" class="secondary">Ver</button></form>
<p class="muted">Follow-ups de campanha planejados desde ${formatAt(data.since, frame.timeZone)}. “Responderam”: o fã escreveu até 24 h depois daquele envio. Saída, atendimento humano e conversão contam para o último follow-up enviado antes deles. Taxas sobre os enviados (enviados: sobre os planejados). Calculado ${ageMs < 1_000 ? 'agora' : `há ${Math.round(ageMs / 1000)} s`} (${formatAt(data.computedAt, frame.timeZone)}); recalculado em segundo plano, no máximo a cada minuto.</p>
${campaignsShown.length === 0 ? html`<p>Nenhum follow-up de campanha nesse período.</p>` : ''}
${campaignsShown.map((campaign) => {
  const rows = data.rows.filter((r) => r.campaign === campaign);
  return html`<section data-campaign="${campaign}"><h2>Campanha ${campaign}</h2>
${funnelTable('Total', [['total', sumCounts(rows)]], 'total')}
<h2>Por etapa</h2>${funnelTable('Etapa', groupBy(rows, stepLabel), 'step')}
<h2>Por variante</h2>${funnelTable('Etapa · variante', groupBy(rows.filter((r) => r.variant !== null), (r) => `${stepLabel(r)} · variante ${r.variant! + 1}`), 'variant')}
<h2>Por compositor</h2>${funnelTable('Compositor', groupBy(rows, (r) => composerLabel(r.composer)), 'composer')}
<h2>Por etapa e compositor</h2>${funnelTable('Etapa · compositor', groupBy(rows, (r) => `${stepLabel(r)} · ${composerLabel(r.composer)}`), 'step-composer')}
</section>`;
})}`;
  return layout(frame, 'funnel', 'Funil por campanha', body);
}

function flags(f: { optedOut: boolean; handoff: boolean; converted: boolean }) {
  return html`${f.optedOut ? html`<span class="badge bad">saiu</span> ` : ''}${f.handoff ? html`<span class="badge warn">atendimento humano</span> ` : ''}${f.converted ? html`<span class="badge ok">sócio</span>` : ''}`;
}

export function fansPage(frame: PageFrame, query: string, result: { byPhone: string | null; fans: FanMatch[] } | null): Html {
  const body = html`
<form method="get" action="/dashboard/fans" class="row panel">
<label class="grow">Telefone (qualquer formato) ou nome <input name="q" value="${query}" placeholder="+55 81 99999-8888 ou Maria" autofocus></label>
<button type="submit">Buscar</button></form>
${result === null ? '' : result.fans.length === 0 ? html`<p>Nenhum fã encontrado${result.byPhone ? html` com o número ${result.byPhone}` : ''}.</p>` : html`<div class="scroll"><table data-section="fans"><thead><tr><th>Telefone</th><th>Nome</th><th>Situação</th><th>Última mensagem do fã</th></tr></thead><tbody>
${result.fans.map((f) => html`<tr><td><a href="/dashboard/fans/${f.phone}" data-fan="${f.phone}">${f.phone}</a></td><td>${f.name ?? '—'}</td><td>${flags(f)}</td><td>${formatAt(f.lastInboundAt, frame.timeZone)}</td></tr>`)}
</tbody></table></div>`}`;
  return layout(frame, 'fans', 'Fãs', body);
}

const OPEN = new Set(['pending', 'queued']);

export function fanPage(frame: PageFrame, t: LeadTimeline): Html {
  const lead = t.lead;
  const phone = lead.phone;
  const stopped = { optedOut: Boolean(lead.optedOutAt), handoff: Boolean(lead.handoffAt), converted: Boolean(lead.convertedAt) };
  const stopButton = (action: string, label: string, done: boolean) =>
    done
      ? ''
      : html`<form method="post" action="/dashboard/actions/stop-fan" class="inline">${csrfField(frame)}<input type="hidden" name="phone" value="${phone}"><input type="hidden" name="reason" value="${action}"><button type="submit" class="secondary" data-action="stop-${action}">${label}</button></form> `;
  const body = html`
<div class="panel" data-fan="${phone}">
<p><strong>${lead.name ?? 'sem nome'}</strong> · ${phone} ${flags(stopped)}</p>
<p class="muted">Fuso: ${lead.timeZone ?? '—'} · última mensagem do fã: ${formatAt(lead.lastInboundAt, frame.timeZone)} · última nossa: ${formatAt(lead.lastOutboundAt, frame.timeZone)}</p>
<div class="row">${stopButton('opted_out', 'Pediu para sair', stopped.optedOut)}${stopButton('handoff', 'Passar para atendimento humano', stopped.handoff)}${stopButton('converted', 'Virou sócio', stopped.converted)}</div>
</div>
<h2>Inscrições</h2>
${t.enrollments.length === 0 ? html`<p class="muted">Nenhuma.</p>` : html`<div class="scroll"><table><thead><tr><th>Campanha</th><th>Situação</th><th>Motivo</th><th>Desde</th></tr></thead><tbody>
${t.enrollments.map((e) => html`<tr><td>${e.campaign}</td><td>${e.status}</td><td>${reasonLabel(e.stopReason)}</td><td>${formatAt(e.createdAt, frame.timeZone)}</td></tr>`)}</tbody></table></div>`}
<h2>Follow-ups</h2>
${t.followups.length === 0 ? html`<p class="muted">Nenhum.</p>` : html`<div class="scroll"><table data-section="fan-followups"><thead><tr><th>Etapa</th><th>Situação</th><th>Para</th><th>Enviado</th><th>Texto</th><th></th></tr></thead><tbody>
${t.followups.map(
  (f) => html`<tr data-followup="${f.id}"><td>${f.campaign ?? '—'} ${f.step ?? ''}</td><td>${STATUS_LABELS[f.status] ?? f.status}${f.deferReason && f.status === 'pending' ? html`<div class="muted">${reasonLabel(f.deferReason)}</div>` : ''}${f.cancelReason ? html`<div class="muted">${reasonLabel(f.cancelReason)}</div>` : ''}</td>
<td>${formatAt(f.dueAt, frame.timeZone)}</td><td>${formatAt(f.sentAt, frame.timeZone)}</td><td>${f.sentText ?? f.message ?? ''}</td>
<td>${OPEN.has(f.status) ? html`<form method="post" action="/dashboard/actions/cancel" class="inline">${csrfField(frame)}<input type="hidden" name="id" value="${f.id}"><input type="hidden" name="back" value="/dashboard/fans/${phone}"><button type="submit" class="secondary" data-action="cancel">Cancelar</button></form>` : ''}
${f.status === 'failed' ? html`<form method="post" action="/dashboard/actions/retry" class="inline">${csrfField(frame)}<input type="hidden" name="id" value="${f.id}"><input type="hidden" name="back" value="/dashboard/fans/${phone}"><button type="submit" data-action="retry">Tentar de novo</button></form>` : ''}</td></tr>`,
)}</tbody></table></div>`}
<h2>Linha do tempo</h2>
<ul class="timeline" data-section="timeline">
${[...t.timeline].reverse().map((item) =>
  item.type === 'message'
    ? html`<li class="${item.direction}"><span class="muted">${formatAt(item.at, frame.timeZone)} · ${item.direction === 'in' ? 'fã' : item.source === 'followup' ? 'follow-up' : item.source === 'human' ? 'pessoa da equipe' : 'Marina (agente)'}</span><div>${item.text ?? html`<em>[${item.messageType ?? 'mensagem'}]</em>`}</div></li>`
    : item.type === 'number_change'
      ? html`<li class="ev"><span class="muted">${formatAt(item.at, frame.timeZone)} · número de WhatsApp</span><div>${item.from ?? '—'} → ${item.to}: ${reasonLabel(item.reason)}</div></li>`
      : html`<li class="ev"><span class="muted">${formatAt(item.at, frame.timeZone)} · follow-up ${item.campaign ?? ''} ${item.step ?? ''}</span><div>${item.from ? `${STATUS_LABELS[item.from] ?? item.from} → ` : ''}${STATUS_LABELS[item.to] ?? item.to}: ${reasonLabel(item.reason)}</div></li>`,
)}
</ul>`;
  return layout(frame, 'fans', `Fã ${lead.name ?? phone}`, body);
}

export function failuresPage(frame: PageFrame, data: FailuresPage): Html {
  const row = (f: FailuresPage['failed'][number], retry: boolean) =>
    html`<tr data-followup="${f.id}"><td><a href="/dashboard/fans/${f.phone}">${f.phone}</a></td><td>${f.campaign ?? '—'} ${f.step ?? ''}</td><td>${reasonLabel(f.reason)}</td><td>${f.lastError ?? '—'}</td><td class="n">${f.attempts}</td><td>${formatAt(f.at, frame.timeZone)}</td>
<td>${retry ? html`<form method="post" action="/dashboard/actions/retry" class="inline">${csrfField(frame)}<input type="hidden" name="id" value="${f.id}"><input type="hidden" name="back" value="/dashboard/failures"><button type="submit" data-action="retry">Tentar de novo</button></form>` : ''}</td></tr>`;
  const head = html`<thead><tr><th>Fã</th><th>Etapa</th><th>Motivo</th><th>Último erro</th><th class="n">Tentativas</th><th>Quando</th><th></th></tr></thead>`;
  const body = html`
<h2>Falhas por motivo</h2>
${data.byReason.length === 0 ? html`<p class="ok">Nenhum follow-up falhou.</p>` : html`<div class="scroll"><table data-section="failures-by-reason"><thead><tr><th>Motivo</th><th class="n">Follow-ups</th><th></th></tr></thead><tbody>
${data.byReason.map(
  (r) => html`<tr><td>${reasonLabel(r.reason)}</td><td class="n">${number(r.count)}</td><td><form method="post" action="/dashboard/actions/retry-reason" class="inline">${csrfField(frame)}<input type="hidden" name="reason" value="${r.reason}"><button type="submit" data-action="retry-reason">Tentar todos de novo</button></form></td></tr>`,
)}</tbody></table></div>`}
<h2>Falharam (mais recentes)</h2>
${data.failed.length === 0 ? html`<p class="muted">Nenhum.</p>` : html`<div class="scroll"><table data-section="failed">${head}<tbody>${data.failed.map((f) => row(f, true))}</tbody></table></div>`}
<h2>Envios incertos (sendo conferidos com o WhatsApp)</h2>
${data.ambiguous.length === 0 ? html`<p class="muted">Nenhum.</p>` : html`<div class="scroll"><table data-section="ambiguous">${head}<tbody>${data.ambiguous.map((f) => row(f, false))}</tbody></table></div>`}`;
  return layout(frame, 'failures', 'Falhas', body);
}
