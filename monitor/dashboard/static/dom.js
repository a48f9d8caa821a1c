// Small DOM and number helpers shared by the dashboard's modules. Text always goes in as text
// (textContent), never as HTML: class names come from the logs.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export const pct = (v) => (Number.isNaN(v) ? '–' : `${(100 * v).toFixed(1)}%`);
export const fixed = (v, digits = 3) => (Number.isNaN(v) ? '–' : v.toFixed(digits));

// Precision, recall and F1 of one operating point; NaN where undefined (nothing predicted
// positive, no positives, neither).
export function prf({tp, fp, fn}) {
  return {
    precision: tp + fp > 0 ? tp / (tp + fp) : NaN,
    recall: tp + fn > 0 ? tp / (tp + fn) : NaN,
    f1: 2 * tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : NaN,
  };
}
