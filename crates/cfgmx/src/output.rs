//! Terminal output helpers: aligned tables and a quiet exit on a closed pipe.

/// Restores the default SIGPIPE action so `cfgmx expand | head` ends quietly instead of
/// panicking on a failed write (Rust ignores SIGPIPE by default).
pub fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The terminal settings to restore once a live display is gone (see [`QuietEcho`]).
static SAVED_TERMIOS: std::sync::Mutex<Option<libc::termios>> = std::sync::Mutex::new(None);

/// While it lives, the terminal on stderr does not echo control characters (`ECHOCTL` off).
/// indicatif leaves the cursor at the right edge of a display's last line; the `^C` a terminal
/// echoes for Ctrl-C would wrap it onto a line indicatif does not know of, and its clearing
/// (or the interrupt handler's) would then miss the display's top line, leaving a stale
/// spinner or bar. Without ECHOCTL the key echoes as the bare control byte, which moves
/// nothing. Dropped, or on an interrupt that exits ([`restore_echo`]), the settings return.
pub struct QuietEcho(());

impl QuietEcho {
    pub fn start() -> QuietEcho {
        // SAFETY: tcgetattr/tcsetattr on stderr's descriptor with a termios it filled in; a
        // descriptor that is not a terminal fails tcgetattr and nothing is changed.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDERR_FILENO, &mut t) == 0 {
                let saved = t;
                t.c_lflag &= !libc::ECHOCTL;
                if libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &t) == 0 {
                    let mut s = SAVED_TERMIOS.lock().unwrap_or_else(|e| e.into_inner());
                    // Nested displays (the probe's inside a build's) keep the first settings.
                    s.get_or_insert(saved);
                }
            }
        }
        QuietEcho(())
    }
}

impl Drop for QuietEcho {
    fn drop(&mut self) {
        restore_echo();
    }
}

/// Gives the terminal back the settings a [`QuietEcho`] changed (once; later calls do nothing).
pub fn restore_echo() {
    let saved = SAVED_TERMIOS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(t) = saved {
        // SAFETY: tcsetattr on stderr's descriptor with the settings read from it.
        unsafe {
            libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &t);
        }
    }
}

/// How one output stream is laid out and coloured: decided once per command from the flags
/// and the environment (style habit 5: terminal-ness is passed in, not asked by each printer).
#[derive(Debug, Clone, Copy, Default)]
pub struct Term {
    /// Columns to fit: `COLUMNS` when set, else the terminal's width, else none (a pipe or a
    /// file gets whole lines, so `grep` and scripts see every cell in full).
    pub width: Option<usize>,
    /// ANSI colour on (see [`colour_on`]).
    pub color: bool,
    /// `--verbose`: long reasons whole instead of one short phrase.
    pub verbose: bool,
}

impl Term {
    /// Standard output as a command's tables and summaries use it.
    pub fn stdout(g: &crate::cli::Global) -> Term {
        let out = std::io::stdout();
        Term {
            width: width_of(&out),
            // JSON is data: never coloured, whatever --color says.
            color: !g.json && colour_on(g.color, &out),
            verbose: g.verbose,
        }
    }

    /// Standard error, where progress and a build's per-variant lines go.
    pub fn stderr(g: &crate::cli::Global) -> Term {
        let err = std::io::stderr();
        Term {
            width: width_of(&err),
            color: colour_on(g.color, &err),
            verbose: g.verbose,
        }
    }

    /// `text` coloured as `tone` when colour is on, as it is otherwise.
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.color || text.is_empty() {
            return text.to_string();
        }
        let style = tone.style();
        format!("{}{text}{}", style.render(), style.render_reset())
    }

    /// A status word coloured by what it means: passed green, failed red, not built yellow,
    /// nothing to say dim.
    pub fn status(&self, word: &str) -> String {
        self.paint(Tone::of(word), word)
    }

    /// Prose wrapped to the width (each line at most `width` columns), continuation lines
    /// indented by `indent` spaces; unchanged when there is no width.
    pub fn wrap(&self, text: &str, indent: usize) -> String {
        let Some(w) = self.width else {
            return text.to_string();
        };
        let pad = " ".repeat(indent);
        text.lines()
            .map(|l| {
                let opts = textwrap::Options::new(w.max(indent + 10))
                    .subsequent_indent(&pad)
                    .break_words(true);
                textwrap::wrap(l, opts).join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Text indented by `indent` spaces on every line, wrapped to the width (lines printed
    /// under a variant's own line).
    pub fn block(&self, text: &str, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let Some(w) = self.width else {
            return text
                .lines()
                .map(|l| format!("{pad}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
        };
        text.lines()
            .map(|l| {
                let opts = textwrap::Options::new(w.max(indent + 10))
                    .initial_indent(&pad)
                    .subsequent_indent(&pad)
                    .break_words(true);
                textwrap::wrap(l, opts).join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A reason as a table cell shows it: whole under `--verbose`, else its short phrase.
    pub fn reason(&self, text: &str) -> String {
        if self.verbose {
            text.to_string()
        } else {
            short_phrase(text)
        }
    }
}

/// Display width of a cell's text, colour codes left out.
fn console_width(s: &str) -> usize {
    textwrap::core::display_width(s)
}

/// `COLUMNS` (what a user or a test sets to ask for a width) wins; else the terminal's width
/// when the stream is one.
fn width_of<S: std::io::IsTerminal + std::os::fd::AsFd>(stream: &S) -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(c);
    }
    if !stream.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(stream.as_fd()).map(|(w, _)| w.0 as usize)
}

/// Whether to colour a stream: `--color always|never` as said; `auto` follows anstream's rules
/// (NO_COLOR off, CLICOLOR_FORCE on, else a terminal that supports colour), the ones clap's
/// own help follows.
pub fn colour_on(when: crate::cli::ColorWhen, stream: &impl anstream::stream::RawStream) -> bool {
    use crate::cli::ColorWhen;
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never,
    }
}

/// What a coloured word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    /// Not built, not run, no tests: neither a pass nor a failure.
    Warn,
    /// Nothing to say (`-`).
    Dim,
    Header,
}

impl Tone {
    fn style(self) -> anstyle::Style {
        use anstyle::{AnsiColor, Style};
        match self {
            Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Tone::Bad => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Tone::Dim => Style::new().dimmed(),
            Tone::Header => Style::new().bold(),
        }
    }

    /// The tone of a status word as the tables spell it.
    pub fn of(word: &str) -> Tone {
        match word {
            "passed" | "passed (cached)" | "cached" | "ok" | "available" | "yes" => Tone::Good,
            "FAILED" | "failed" | "TIMED OUT" | "timed out" => Tone::Bad,
            "-" | "" => Tone::Dim,
            _ => Tone::Warn,
        }
    }
}

/// A long reason folded to one short phrase for a table cell: its first line, without a
/// leading `` `command`: `` and without what follows the first ` (` or `; `, or a `: ` past the
/// first 20 characters (the advice and the details, which `--verbose` and `--json` keep; a
/// short head such as `link test failed: ` keeps the line it introduces). At most 72
/// characters.
pub fn short_phrase(text: &str) -> String {
    let mut s = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if let Some(rest) = s.strip_prefix('`').and_then(|r| r.split_once("`: ")) {
        s = rest.1;
    }
    for (cut, after) in [(" (", 8), ("; ", 8), (": ", 20)] {
        if let Some(i) = s.find(cut).filter(|i| *i >= after) {
            s = &s[..i];
        }
    }
    const MAX: usize = 72;
    if s.chars().count() > MAX {
        let mut t: String = s.chars().take(MAX - 1).collect();
        t.push('…');
        return t;
    }
    s.to_string()
}

/// A path as the user can open it from where they stand: relative to the current directory
/// when it is under it, else as given.
pub fn rel_to_cwd(p: &std::path::Path) -> String {
    if p.is_relative() {
        return p.display().to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => match p.strip_prefix(&cwd) {
            Ok(r) if !r.as_os_str().is_empty() => r.display().to_string(),
            _ => p.display().to_string(),
        },
        Err(_) => p.display().to_string(),
    }
}

/// A text table without borders, laid out by comfy-table: columns two spaces apart, sized to
/// the terminal (cells wrap inside their column when the table is wider than `Term::width`;
/// the columns a row is looked up by shrink last; the low-value columns are left out, with a
/// note, before any column would have to cut a word).
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    keep: Vec<usize>,
    /// Columns left out, in this order, while the table does not fit with every column as
    /// wide as its longest word.
    optional: Vec<usize>,
    /// Columns shown as a prefix, cut rather than wrapped, down to so many characters (a hash:
    /// any unique prefix names the same variant).
    prefix: Vec<(usize, usize)>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            keep: vec![0],
            optional: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// Columns that may be left out at a narrow width, the least useful first: a table that
    /// cannot fit with each column as wide as its longest word drops them one by one (and
    /// says which) rather than cut words in the middle.
    pub fn optional(mut self, cols: &[usize]) -> Table {
        self.optional.extend_from_slice(cols);
        self
    }

    /// The width the table needs with no word cut: each column as wide as its longest word
    /// (a prefix column as its least prefix), kept columns whole.
    fn least_uncut(&self) -> usize {
        let natural = self.natural();
        (0..self.headers.len())
            .map(|i| {
                if self.keep.contains(&i) {
                    return natural[i];
                }
                let least = match self.prefix.iter().find(|(p, _)| *p == i) {
                    Some((_, m)) => *m,
                    None => self.longest_word(i),
                };
                natural[i].min(least + self.pad(i))
            })
            .sum()
    }

    fn longest_word(&self, i: usize) -> usize {
        std::iter::once(&self.headers[i])
            .chain(self.rows.iter().filter_map(|r| r.get(i)))
            .flat_map(|c| c.split_whitespace())
            .map(console_width)
            .max()
            .unwrap_or(0)
    }

    /// This table without the columns `drop`.
    fn without(&self, drop: &[usize]) -> Table {
        let kept: Vec<usize> = (0..self.headers.len())
            .filter(|i| !drop.contains(i))
            .collect();
        let at = |old: usize| kept.iter().position(|k| *k == old);
        Table {
            headers: kept.iter().map(|i| self.headers[*i].clone()).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| kept.iter().filter_map(|i| r.get(*i).cloned()).collect())
                .collect(),
            keep: self.keep.iter().filter_map(|k| at(*k)).collect(),
            optional: Vec::new(),
            prefix: self
                .prefix
                .iter()
                .filter_map(|(c, m)| Some((at(*c)?, *m)))
                .collect(),
        }
    }

    /// Columns that keep their whole width (names, statuses) while anything else can shrink;
    /// the first always does.
    pub fn keep(mut self, cols: &[usize]) -> Table {
        self.keep.extend_from_slice(cols);
        self
    }

    /// Column `col` is cut to a prefix of at least `min` characters when the table is too wide.
    pub fn prefix(mut self, col: usize, min: usize) -> Table {
        self.prefix.push((col, min));
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn pad(&self, i: usize) -> usize {
        if i + 1 == self.headers.len() {
            0
        } else {
            2
        }
    }

    /// Each column's width with nothing wrapped, its padding included.
    fn natural(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|i| {
                std::iter::once(&self.headers[i])
                    .chain(self.rows.iter().filter_map(|r| r.get(i)))
                    .flat_map(|c| c.lines())
                    .map(console_width)
                    .max()
                    .unwrap_or(0)
                    + self.pad(i)
            })
            .collect()
    }

    /// The width of the table with no cell wrapped.
    pub fn natural_width(&self) -> usize {
        self.natural().iter().sum()
    }

    /// Column widths (padding included) that fit `w`: the widest shrinkable column gives up a
    /// character first, one at a time, so short columns stay whole and the long ones (flags,
    /// paths, reasons) share what is left (comfy-table's own split cuts every column alike).
    fn widths(&self, w: usize) -> Vec<usize> {
        let n = self.headers.len();
        let mut cols = self.natural();
        let longest_word: Vec<usize> = (0..n).map(|i| self.longest_word(i)).collect();
        let mut total: usize = cols.iter().sum();
        // First down to each column's longest word (`openblas-serial` stays whole, and so
        // does `MKL_DOMAIN_NUM_THREADS`), then to at most 20 characters of it, and a prefix
        // column to its least prefix; then to a few characters; then the kept columns but the
        // first; last, every column down to one character: a table never runs past the width
        // while two spaces between columns leave room for one.
        for phase in 0..5 {
            let floor: Vec<usize> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let kept = self.keep.contains(&i) && (phase < 3 || phase == 3 && i == 0);
                    let prefix = self.prefix.iter().find(|(p, _)| *p == i).map(|(_, m)| *m);
                    let least = match (phase, prefix) {
                        _ if kept => return *c,
                        (0..=3, Some(m)) => m,
                        (0, None) => longest_word[i].max(6),
                        (1, None) => longest_word[i].clamp(6, 20),
                        (2 | 3, None) => 6,
                        _ => 1,
                    };
                    (*c).min(least + self.pad(i))
                })
                .collect();
            while total > w {
                let Some(i) = (0..n)
                    .filter(|i| cols[*i] > floor[*i])
                    // Down to the longest words, the column with the most room above its
                    // own longest word gives first (a column of long words keeps them
                    // whole); below that, the widest.
                    .max_by_key(|i| {
                        let room = if phase == 0 {
                            cols[*i] - floor[*i]
                        } else {
                            cols[*i] - self.pad(*i)
                        };
                        (room, std::cmp::Reverse(*i))
                    })
                else {
                    break;
                };
                cols[i] -= 1;
                total -= 1;
            }
        }
        cols
    }

    pub fn render(&self, term: &Term) -> String {
        let Some(w) = term.width.filter(|_| !self.optional.is_empty()) else {
            return self.render_all(term);
        };
        let mut drop = Vec::new();
        for c in &self.optional {
            if self.without(&drop).least_uncut() <= w {
                break;
            }
            drop.push(*c);
        }
        if drop.is_empty() {
            return self.render_all(term);
        }
        let names: Vec<&str> = drop.iter().map(|c| self.headers[*c].as_str()).collect();
        let note = format!(
            "({} left out to fit {w} columns; a wider terminal, COLUMNS=200 or --json shows {})",
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" }
        );
        format!(
            "{}{}\n",
            self.without(&drop).render_all(term),
            term.wrap(&note, 1)
        )
    }

    fn render_all(&self, term: &Term) -> String {
        use comfy_table::{ColumnConstraint, ContentArrangement};
        let widths = term.width.map(|w| self.widths(w));
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.force_no_tty();
        t.set_header(
            self.headers
                .iter()
                .map(|h| term.paint(Tone::Header, h))
                .collect::<Vec<_>>(),
        );
        for r in &self.rows {
            let mut r = r.clone();
            if let Some(ws) = &widths {
                for (col, _) in &self.prefix {
                    if let Some(c) = r.get_mut(*col) {
                        let keep = ws[*col] - self.pad(*col);
                        *c = c.chars().take(keep).collect();
                    }
                }
            }
            t.add_row(r);
        }
        for (i, c) in t.column_iter_mut().enumerate() {
            c.set_padding((0, self.pad(i) as u16));
        }
        match (&widths, term.width) {
            (Some(ws), Some(w)) => {
                for (i, c) in t.column_iter_mut().enumerate() {
                    let width = ws[i].min(u16::MAX as usize) as u16;
                    c.set_constraint(ColumnConstraint::Absolute(comfy_table::Width::Fixed(width)));
                }
                t.set_content_arrangement(ContentArrangement::Dynamic);
                t.set_width(w.min(u16::MAX as usize) as u16);
            }
            _ => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        let mut out = String::new();
        for l in t.lines() {
            out.push_str(l.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Joins flags for display, quoting any with spaces.
pub fn flags(fs: &[String]) -> String {
    fs.iter()
        .map(|f| {
            if f.contains(' ') || f.is_empty() {
                format!("{f:?}")
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sourceable POSIX sh script that puts a locked variant's compilers, flags and environment
/// in place (`cfgmx env HASH`): the env file `generate -f env` renders for it, which the lock
/// carries, so there is one writer and one quoting (each flag one shell word inside the
/// variable, so `make`'s `$(CC) $(CFLAGS) ...` never runs a `; cmd` held in a flag).
pub fn env_script(j: &cfgmx_build::job::Job) -> crate::error::Result<String> {
    j.files.get("env").cloned().ok_or_else(|| {
        crate::error::CliError::usage(format!(
            "variant {} ({}) in the lock file has no env script: its entry was written by an \
             older cfgmx, or holds a value a shell script cannot; run `cfgmx expand --lock` or \
             `cfgmx build` again",
            j.name, j.hash
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fold_to_their_short_phrase() {
        let cases = [
            (
                "`-fopenmp=libomp`: libomp for clang 16 not found: install libomp-16-dev (Debian/Ubuntu; each clang needs the runtime of its own version)",
                "libomp for clang 16 not found",
            ),
            (
                "missing compiler: no icc for c, cxx, fortran (looked for icc, icpc, ifort)",
                "missing compiler: no icc for c, cxx, fortran",
            ),
            ("no flag worked", "no flag worked"),
            ("\n  first line\nsecond", "first line"),
        ];
        for (long, short) in cases {
            assert_eq!(short_phrase(long), short, "{long}");
        }
        // A short head keeps the line it introduces, cut to 72 characters.
        let link = short_phrase(
            "link test failed: compile/link: /usr/bin/ld: cannot find -lmkl_intel_lp64 and more",
        );
        assert!(link.starts_with("link test failed: compile/link: /usr/bin/ld: cannot find"));
        assert!(link.ends_with('…') && link.chars().count() == 72, "{link}");
        let long = "x".repeat(200);
        assert_eq!(short_phrase(&long).chars().count(), 72);
    }

    #[test]
    fn optional_columns_go_before_a_word_is_cut_and_the_note_says_which() {
        let mut t = Table::new(&["NAME", "LONG", "LESS", "KEY"]).optional(&[2, 1]);
        t.row(
            [
                "a-name",
                "supercalifragilistic words",
                "MKL_DOMAIN_NUM_THREADS",
                "value",
            ]
            .map(String::from)
            .to_vec(),
        );
        let at = |w| {
            t.render(&Term {
                width: Some(w),
                ..Term::default()
            })
        };
        // Wide enough: every column, no note.
        let wide = at(80);
        assert!(wide.contains("MKL_DOMAIN_NUM_THREADS") && !wide.contains("left out"));
        // Narrower: LESS goes first, then LONG, each named; no word is ever cut.
        let mid = at(50);
        assert!(
            mid.contains("supercalifragilistic") && !mid.contains("MKL_"),
            "{mid}"
        );
        assert!(mid.contains("(LESS left out to fit 50 columns"), "{mid}");
        let narrow = at(20);
        assert!(narrow.contains("(LESS, LONG left out"), "{narrow}");
        assert!(narrow.lines().next().unwrap().contains("KEY"), "{narrow}");
        // No width (a pipe): every column whole.
        assert!(t
            .render(&Term::default())
            .contains("MKL_DOMAIN_NUM_THREADS"));
    }

    #[test]
    fn a_table_never_runs_past_its_width() {
        let mut t = Table::new(&["NAME", "HASH", "A", "B", "C", "D", "E", "F", "G"]).keep(&[1]);
        t.row(
            ["a-rather-long-variant-name", "0123456789ab"]
                .into_iter()
                .map(String::from)
                .chain((0..7).map(|i| format!("cell {i} with several words in it")))
                .collect(),
        );
        // (nine columns two spaces apart need 25 columns at one character each)
        for w in [25, 40, 80, 120] {
            let term = Term {
                width: Some(w),
                ..Term::default()
            };
            for l in t.render(&term).lines() {
                assert!(l.chars().count() <= w, "{w}: {l:?}");
            }
        }
        // No width: one line per row, cells whole.
        let out = t.render(&Term::default());
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("cell 6 with several words in it"));
    }
}
