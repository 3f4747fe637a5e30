//! `loadgen inventory` through the binary: a deployment, a hosts file, the inventory, the
//! address map, the per-host shaping scripts, and the errors for bad input.

use std::path::Path;
use std::process::Output;

mod common;

use common::{assert_ok, loadgen, repo, stderr};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `loadgen inventory` of `topo` and `hosts` (with `deployment` if given) into `out`.
fn inventory(topo: &str, hosts: &Path, deployment: Option<&Path>, out: &Path) -> Output {
    let (hosts, out) = (s(hosts), s(out));
    let mut args = vec![
        "inventory",
        "--topology",
        topo,
        "--hosts",
        &hosts,
        "--out",
        &out,
    ];
    let deployment = deployment.map(s);
    if let Some(d) = &deployment {
        args.extend(["--deployment", d.as_str()]);
    }
    loadgen(&args)
}

#[test]
fn inventory_places_a_deployment_and_writes_addresses_and_shaping() {
    let tmp = tempfile::tempdir().unwrap();
    let dep = tmp.path().join("dep");
    let topo = repo("topologies/local-symmetric-10mbps.toml");
    let o = loadgen(&[
        "keygen",
        "--topology",
        &topo,
        "--out",
        &s(&dep),
        "--seed",
        "3",
        "--clients",
        "4",
    ]);
    assert_ok(&o);

    let hosts = tmp.path().join("hosts.txt");
    let mut text = String::from("# one host per site, a client host at site0\n");
    for i in 0..5 {
        text += &format!("h{i} 10.9.0.{} site{i}\n", 10 + i);
    }
    text += "cl 10.9.0.99 site0 clients\n";
    std::fs::write(&hosts, &text).unwrap();
    let out = tmp.path().join("inv");
    let o = inventory(&topo, &hosts, Some(&dep), &out);
    assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("6 hosts, 20 Steward servers, 16 PBFT replicas, 4 clients placed"),
        "{stdout}"
    );
    let addresses: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dep.join("addresses.json")).unwrap())
            .unwrap();
    assert_eq!(addresses.len(), 20 + 16 + 4);
    assert_eq!(addresses["steward-s3.2"], "10.9.0.13:7002");
    assert_eq!(addresses["pbft-r4"], "10.9.0.11:7500");
    assert_eq!(addresses["client-3"], "10.9.0.99:8003");
    assert_eq!(
        std::fs::read_to_string(out.join("addresses.json")).unwrap(),
        std::fs::read_to_string(dep.join("addresses.json")).unwrap()
    );
    let inv = std::fs::read_to_string(out.join("inventory.yml")).unwrap();
    for needle in [
        "    site_site0:\n      hosts:\n        cl: {}\n        h0: {}\n",
        "    h2:\n      ansible_host: \"10.9.0.12\"\n",
        "        - id: \"s2.3\"\n          name: \"steward-s2.3\"\n          port: 7003\n",
    ] {
        assert!(inv.contains(needle), "{needle:?} not in\n{inv}");
    }
    // The site-uplink topology: h0's script shares one 10 Mbit/s class and delays 50 ms.
    let sh = std::fs::read_to_string(out.join("shape/h0.netem.sh")).unwrap();
    assert!(
        sh.contains(
            "tc class add dev \"$DEV\" parent 1: classid 1:2 htb rate 10000000bit ceil 10000000bit"
        ),
        "{sh}"
    );
    assert!(sh.contains("netem delay 50000us limit 100000"), "{sh}");
    assert!(sh.contains("match ip dst 10.9.0.14/32"), "{sh}");
    let htb = std::fs::read_to_string(out.join("shape/cl.htb.sh")).unwrap();
    assert!(!htb.contains("netem") && htb.contains("bfifo"), "{htb}");

    // A hosts file that misses a site.
    let short = tmp.path().join("short.txt");
    std::fs::write(&short, text.replace("h4 10.9.0.14 site4\n", "")).unwrap();
    let o = inventory(&topo, &short, None, &out);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "{}: site site4 has 0 replica host(s), per-site placement needs 1",
            s(&short)
        )),
        "{}",
        stderr(&o)
    );

    // A deployment of another topology.
    let other = repo("topologies/local-planetlab.toml");
    let o = inventory(&other, &hosts, Some(&dep), &out);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("the deployment was generated for topology local-symmetric-10mbps")
            && e.contains("not for local-planetlab"),
        "{e}"
    );
    // local-planetlab's sites are named differently: the hosts file's site is unknown.
    let o = inventory(&other, &hosts, None, &out);
    assert!(
        stderr(&o).contains(&format!("{}:2: host h0: unknown site \"site0\"", s(&hosts))),
        "{}",
        stderr(&o)
    );
}
