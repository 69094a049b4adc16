"""Reports a person reads: the HTML page of an optimize run or an eval (`html`), and the
terminal failure table of `eval` (`table`)."""
