// eo explore: the panel "On the state shown" beside Stateright's Explorer.
// For the state selected in the page (the URL's #/steps/… path, less its
// ?offset), it asks /.eo/state for every property evaluated on that state and
// for the state's durable facts, and lists them.
(function () {
  'use strict';

  const WORDS = {
    always: ['✓ holds here', '✗ violated here'],
    sometimes: ['✓ reached here', '· not reached here'],
    eventually: ['✓ met here', '· not met here (judged over whole behaviours)'],
  };

  // The path of the selected state: `#/steps/0/4/8?offset=1` → `/0/4`.
  function selectedPath() {
    const hash = window.location.hash || '';
    const match = hash.match(/^#\/steps((?:\/\d+)*)\/?(?:\?offset=(\d+))?$/);
    if (!match) {
      return null;
    }
    const parts = match[1].split('/').filter((s) => s !== '');
    const offset = parseInt(match[2] || '0', 10);
    const kept = parts.slice(0, Math.max(0, parts.length - offset));
    return kept.length ? '/' + kept.join('/') : null;
  }

  function show(items, summary) {
    const list = document.getElementById('eo-state-properties');
    const facts = document.getElementById('eo-state-summary');
    if (!list || !facts) {
      return;
    }
    list.replaceChildren(...items.map((text) => {
      const li = document.createElement('li');
      li.className = 'font-code';
      li.textContent = text;
      return li;
    }));
    facts.textContent = summary;
  }

  let asked = 0;
  async function refresh() {
    const path = selectedPath();
    if (!path) {
      show([], 'Select a state to see its properties.');
      return;
    }
    const ticket = ++asked;
    try {
      const response = await fetch('/.eo/state' + path);
      if (ticket !== asked) {
        return; // a newer selection is on its way
      }
      if (!response.ok) {
        show([], await response.text());
        return;
      }
      const at = await response.json();
      show(
        at.properties.map((p) => {
          const [yes, no] = WORDS[p.expectation] || ['✓ true here', '✗ false here'];
          return `${p.holds ? yes : no}: ${p.expectation} ${p.name}`;
        }),
        'Durable facts: ' + at.summary,
      );
    } catch (err) {
      show([], 'Could not evaluate the state: ' + err);
    }
  }

  window.addEventListener('hashchange', refresh);
  refresh();
})();
