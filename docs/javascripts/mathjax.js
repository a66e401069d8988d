// MathJax typesets only what pymdownx.arithmatex marked (class "arithmatex"): the docstrings'
// \( ... \) and \[ ... \]. Without network access the page shows the LaTeX source instead.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
