//! `loadgen completions <shell>` and `loadgen man`.

mod common;

use common::{loadgen_cmd, piped, stdout};

/// The visible subcommands, as `loadgen --help` lists them (without `help`).
fn subcommands() -> Vec<String> {
    let help = stdout(&piped(&["--help"]));
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        // Command lines are indented by two; wrapped descriptions by more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    for expected in [
        "simulate",
        "local",
        "matrix",
        "campaign",
        "completions",
        "man",
    ] {
        assert!(list.iter().any(|c| c == expected), "{expected} in {list:?}");
    }
    list
}

#[test]
fn bash_completion_mentions_every_subcommand() {
    let script = stdout(&piped(&["completions", "bash"]));
    assert!(script.contains("complete -F _loadgen"), "{script}");
    for sub in subcommands() {
        assert!(
            script.contains(&format!("loadgen,{sub})")),
            "bash completion lacks {sub}"
        );
    }
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "_loadgen()"),
        ("zsh", "#compdef loadgen"),
        ("fish", "complete -c loadgen"),
        ("elvish", "edit:completion:arg-completer[loadgen]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = stdout(&piped(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("campaign"), "{shell}: no campaign");
    }
}

#[test]
fn man_page_is_roff_and_lists_the_subcommands() {
    let page = stdout(&piped(&["man"]));
    // clap_mangen's two-line preamble (the apostrophe string), then the title line.
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or("");
    assert!(first.starts_with(".TH loadgen 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in subcommands() {
        // roff escapes hyphens.
        let name = format!("loadgen-{sub}(1)").replace('-', "\\-");
        assert!(page.contains(&name), "man page lacks {name}");
    }
}

#[test]
fn man_out_dir_writes_a_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let dir_s = dir.display().to_string();
    let o = piped(&["man", "--out-dir", &dir_s]);
    let listed: Vec<String> = stdout(&o).lines().map(String::from).collect();
    let mut expected = vec![dir.join("loadgen.1")];
    expected.extend(
        subcommands()
            .iter()
            .map(|s| dir.join(format!("loadgen-{s}.1"))),
    );
    expected.push(dir.join("steward-node.1"));
    expected.push(dir.join("pbft-node.1"));
    for page in &expected {
        let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(text.contains(".TH "), "{page:?}");
        assert!(listed.contains(&page.display().to_string()), "{listed:?}");
    }
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    let simulate = std::fs::read_to_string(dir.join("loadgen-simulate.1")).unwrap();
    assert!(simulate.contains("\\-\\-topology"), "{simulate}");
    // The hidden `replica` subcommand gets no page.
    assert!(!dir.join("loadgen-replica.1").exists());
}

#[test]
fn replica_programs_have_completions_and_man_pages() {
    for (program, about) in [
        ("steward-node", "Run one Steward replica."),
        ("pbft-node", "Run one PBFT replica."),
    ] {
        let fish = stdout(&piped(&["completions", "fish", "--program", program]));
        for option in ["deployment", "id", "listen-fd", "wan", "data-dir"] {
            assert!(
                fish.contains(&format!("complete -c {program} -l {option} ")),
                "{program} --{option}:\n{fish}"
            );
        }
        let page = stdout(&piped(&["man", "--program", program]));
        assert!(page.contains(&format!(".TH {program} 1")), "{page}");
        assert!(page.contains(about), "{page}");
        assert!(page.contains("\\-\\-deployment"), "{page}");
    }
}

#[test]
fn man_out_dir_is_for_every_program() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1").display().to_string();
    let o = loadgen_cmd()
        .args(["man", "--program", "pbft-node", "--out-dir", &dir])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}
