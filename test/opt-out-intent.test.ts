import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOptOutMessage, normalizeForIntent } from '../src/webhooks/opt-out-intent.js';

describe('opt-out intent', () => {
  const optOuts = [
    'parar', 'Pare', 'PARA!!!', 'Sair.', 'sair', 'stop', 'STOP please', 'Parar por favor', 'ok, pode parar', 'para para para',
    'chega', 'remover', 'descadastrar', 'unsubscribe',
    'não quero mais', 'Não quero mais.', 'NAO QUERO MAIS', 'n quero mais receber msg', 'Não quero mais, obrigado', 'não quero mais nada com vocês',
    'não quero receber', 'não me mande mais', 'Não me mandem mais mensagens', 'nao envie mais nada',
    'me tira da lista', 'Me tira dessa lista por favor', 'tira meu número', 'quero sair da lista', 'como faço pra me descadastrar?',
    'Pode parar de me mandar mensagem, não quero mais', 'pare de me mandar mensagens', 'parem de me enviar isso',
    'como faço pra parar de receber?', 'Chega de mensagem!', 'Para com isso', 'Não tenho interesse, pode parar de mandar',
  ];
  const notOptOuts = [
    'não quero parar de receber novidades', 'vou sair do trabalho e te respondo', 'para quando é o jogo?',
    'Não quero mais esperar, quero ser sócio!', 'Não quero mais pagar caro, tem desconto?', 'não precisa parar de mandar',
    'quero ser sócio', 'Opa Marina, ainda tô pensando, visse?', 'Para mim tá ótimo', 'Vou parar no Aflitos amanhã',
    'sair que horas?', 'pode mandar o link', 'não paro de pensar no Timão', 'Quando para o ônibus?', 'stop motion é massa',
    'nunca vou parar de torcer', 'Me manda o link do pagamento', '', '   ', '👍',
  ];

  for (const text of optOuts) {
    test(`"${text}" is an opt-out`, () => assert.equal(isOptOutMessage(text), true, normalizeForIntent(text)));
  }
  for (const text of notOptOuts) {
    test(`"${text}" is not an opt-out`, () => assert.equal(isOptOutMessage(text), false, normalizeForIntent(text)));
  }

  test('null and media without caption are not opt-outs', () => {
    assert.equal(isOptOutMessage(null), false);
    assert.equal(isOptOutMessage(undefined), false);
  });

  test('normalises accents, case, punctuation and chat spellings', () => {
    assert.equal(normalizeForIntent('Ñ QUERO mais, msg NÃO!'), 'nao quero mais | mensagem nao');
  });

  test('a very long message is read only in its first part and does not hang', () => {
    const long = `${'blá '.repeat(100_000)}parar`;
    const started = Date.now();
    assert.equal(isOptOutMessage(long), false);
    // A regex that backtracks on 400 kB takes minutes, not seconds; 10 s is a bound a loaded machine cannot reach.
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });
});
