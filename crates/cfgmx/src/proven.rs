//! Concretisation with proof: every variant matched against the profile, then each one that
//! looks available built and run once with its exact toolchain (cfgmx-probe's link tests), so
//! "available" is never only an inference from separate records.

use cfgmx_model::{proof, ConcreteVariant, Matrix, Profile, Registry, Variant};
use cfgmx_probe::ProbeOptions;

/// Concretises `variants` on `profile`; with `prove` (the profile is this machine's), each
/// available variant's link test decides. Warnings (an unwritable cache) go to stderr.
pub fn concretize_all(
    variants: &[Variant],
    m: &Matrix,
    reg: &Registry,
    profile: &Profile,
    prove: Option<&ProbeOptions>,
) -> Vec<ConcreteVariant> {
    let mut cs: Vec<ConcreteVariant> = variants
        .iter()
        .map(|v| cfgmx_model::concretize(v, m, reg, profile))
        .collect();
    let Some(opts) = prove else {
        return cs;
    };
    let tests: Vec<(usize, cfgmx_model::LinkTest)> = cs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| proof::link_test(c, reg).map(|t| (i, t)))
        .map(|(i, mut t)| {
            // The variables the implementation's launcher decides by (Open MPI as root), as
            // this process has them: the proof is made and cached with them.
            if let Some(m) = &mut t.mpi {
                for (n, v) in m.user_env.iter_mut() {
                    *v = std::env::var(n).ok();
                }
            }
            (i, t)
        })
        .collect();
    if tests.is_empty() {
        return cs;
    }
    // No link test depends on the core count (a build sets it to its -j): proofs made with
    // another count stay valid.
    let mut keyed = profile.clone();
    keyed.cpus = 0;
    let digest = cfgmx_model::hash::sha256_hex(&serde_json::to_vec(&keyed).unwrap_or_default());
    let only: Vec<cfgmx_model::LinkTest> = tests.iter().map(|(_, t)| t.clone()).collect();
    let (proofs, warning) = cfgmx_probe::prove(&only, opts, &digest);
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    for ((i, t), p) in tests.iter().zip(&proofs) {
        proof::apply(&mut cs[*i], t, p);
    }
    cs
}
