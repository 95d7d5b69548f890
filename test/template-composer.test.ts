import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Campaigns } from '../src/campaigns/campaign.js';
import { enrollLeads } from '../src/campaigns/enroll-leads.js';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from '../src/campaigns/load-campaigns.js';
import { renderTemplate } from '../src/campaigns/render-template.js';
import { makeFakeClock } from '../src/clock.js';
import { makeCampaignComposer } from '../src/compose/campaign-composer.js';
import { type Composer, firstName } from '../src/compose/composer.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const START = '2026-01-05T12:00:00.000Z';
const LEADS = 1_000;
// Known names in many spellings, and "names" that are not usable as a first name.
const NAMES = ['Ana Souza', 'joão pedro', 'MARIA DAS DORES', 'Zé', 'Severino', 'Luíza', "D'Ávila", 'Biu do Timbu', 'Cícero', 'Rafaela'];
const NOT_NAMES = [null, '', '   ', '123', '@@@', '🐯'];
const PLACEHOLDER = /\[|\]|\{|\}|<|>|\bundefined\b|\bnull\b|\bNaN\b|,\s*[!?.,](?!\.)|\s{2}|^\s|\s$/;

let testDb: TestDatabase;
let campaigns: Campaigns;
let composer: Composer;

before(async () => {
  testDb = await createTestDatabase();
  campaigns = loadCampaigns(DEFAULT_CAMPAIGNS_DIR, { personaName: 'Marina Campelo', maxChars: 300 });
  composer = makeCampaignComposer({ campaigns, llm: null, limits: { maxChars: 300, historyMessages: 12 } });
});
after(async () => {
  await testDb?.drop();
});

type Lead = { id: string; phone: string; name: string | null };

async function compose(followup: { id: string; lead_id: string; enrollment_id: string; step: number; intent: string }, lead: Lead) {
  return composer.compose({
    followup: { ...followup, campaign: 'nautico', message: null },
    lead: { id: lead.id, phone: lead.phone, name: lead.name, timeZone: null, metadata: {} },
    now: new Date(START),
    db: testDb.db,
  });
}

describe('the template composer over 1,000 enrollments', () => {
  it('never gives a lead the same text twice, spreads the variants, uses names when known and nothing odd when not', async () => {
    const clock = makeFakeClock(START);
    const rows = Array.from({ length: LEADS }, (_, i) => ({
      phone: `55819${String(40_000_000 + i)}`,
      name: i % 5 < 3 ? NAMES[i % NAMES.length]! : NOT_NAMES[i % NOT_NAMES.length]!,
    }));
    const result = await enrollLeads({ db: testDb.db, clock, campaigns }, { campaign: 'nautico', leads: rows });
    assert.equal(result.enrolled, LEADS);

    const { rows: followups } = await testDb.db.query<{ id: string; lead_id: string; enrollment_id: string; step: number; intent: string; phone: string; name: string | null }>(
      `SELECT f.id, f.lead_id, f.enrollment_id, f.step, f.intent, l.phone, l.name
         FROM follow_ups f JOIN leads l ON l.id = f.lead_id ORDER BY l.phone, f.step`,
    );
    assert.equal(followups.length, LEADS * 3);
    const nautico = campaigns.get('nautico')!;
    const textsByLead = new Map<string, string[]>();

    for (const step of [1, 2, 3]) {
      const due = followups.filter((f) => f.step === step);
      const composed: Array<{ leadId: string; text: string; name: string | null }> = [];
      // Compose a step for everyone, then "send" it (log it as an outbound message), as the worker would.
      for (let i = 0; i < due.length; i += 50) {
        const chunk = due.slice(i, i + 50);
        const texts = await Promise.all(chunk.map((f) => compose(f, { id: f.lead_id, phone: f.phone, name: f.name })));
        texts.forEach((c, j) => {
          assert.equal(c.composer, 'template');
          composed.push({ leadId: chunk[j]!.lead_id, text: c.text, name: chunk[j]!.name });
        });
      }
      await testDb.db.query(
        `INSERT INTO messages (lead_id, direction, source, text, at)
         SELECT unnest($1::uuid[]), 'out', 'followup', unnest($2::text[]), $3::timestamptz`,
        [composed.map((c) => c.leadId), composed.map((c) => c.text), new Date(Date.parse(START) + step * 3_600_000)],
      );

      // Which variant each text is, from the variants rendered for that lead's name.
      const variants = nautico.steps[step - 1]!.variants;
      const counts = new Array<number>(variants.length).fill(0);
      for (const c of composed) {
        const name = firstName(c.name);
        const index = variants.findIndex((v) => renderTemplate(name ? v.withName : v.withoutName, nautico, name) === c.text);
        assert.ok(index >= 0, `"${c.text}" is one of step ${step}'s variants`);
        counts[index]! += 1;
        assert.doesNotMatch(c.text, PLACEHOLDER, `no placeholder or empty greeting: "${c.text}"`);
        if (name) assert.ok(c.text.includes(name), `"${c.text}" uses the name ${name}`);
        else for (const n of NAMES) assert.ok(!c.text.includes(n.split(' ')[0]!), `"${c.text}" names nobody`);
        textsByLead.set(c.leadId, [...(textsByLead.get(c.leadId) ?? []), c.text]);
      }
      const share = Math.max(...counts) / composed.length;
      console.log(`step ${step}: variants used ${counts.join(' / ')} (largest share ${(share * 100).toFixed(1)}%)`);
      assert.ok(share <= 0.4, `no variant takes more than 40% of step ${step} (largest: ${(share * 100).toFixed(1)}%)`);

      // Leads side by side (consecutive phones, as in a list) mostly get different texts.
      let same = 0;
      for (let i = 1; i < composed.length; i++) if (composed[i]!.text === composed[i - 1]!.text) same++;
      assert.ok(same / composed.length < 0.35, `neighbours share a text ${same} times out of ${composed.length}`);
    }

    for (const [leadId, texts] of textsByLead) {
      assert.equal(texts.length, 3);
      assert.equal(new Set(texts).size, 3, `lead ${leadId} got the same text twice`);
    }
  });

  it('rotates past every variant a lead already got, and says so once they are all used up', async () => {
    const clock = makeFakeClock(START);
    const phone = '5581988880000';
    await enrollLeads({ db: testDb.db, clock, campaigns }, { campaign: 'nautico', leads: [{ phone, name: 'Tonho' }] });
    const { rows } = await testDb.db.query<{ id: string; lead_id: string; enrollment_id: string; step: number; intent: string }>(
      `SELECT f.id, f.lead_id, f.enrollment_id, f.step, f.intent FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = $1 AND f.step = 1`,
      [phone],
    );
    const followup = rows[0]!;
    const lead = { id: followup.lead_id, phone, name: 'Tonho' };
    const variants = campaigns.get('nautico')!.steps[0]!.variants.length;
    const seen = new Set<string>();
    // The same step composed again and again (as if re-enrolled each time): a new text until none is left.
    for (let i = 0; i < variants; i++) {
      const c = await compose(followup, lead);
      assert.ok(!seen.has(c.text), `round ${i + 1}: a text not sent before`);
      assert.equal(c.notes, undefined);
      seen.add(c.text);
      await testDb.db.query(`INSERT INTO messages (lead_id, direction, source, text, at) VALUES ($1, 'out', 'followup', $2, $3)`, [
        lead.id,
        c.text,
        new Date(Date.parse(START) + i * 86_400_000),
      ]);
    }
    const exhausted = await compose(followup, lead);
    assert.deepEqual(exhausted.notes?.map((n) => n.reason), ['template_repeat']);
    assert.equal(exhausted.composer, 'template');
  });
});
