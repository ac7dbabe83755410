//! Turns what the user typed into a `Plan`: every trace point resolved
//! against the kernel's BTF (which argument is the skb, how it attaches),
//! before anything is loaded. Every user mistake is found here.

pub mod spec;
pub mod user;

use std::fmt;

use thiserror::Error;

use crate::event::Lineage;
use crate::kernel::Module;
use crate::kernel::btf::{Btf, Kind};
use crate::kernel::features::{Feature, Features};
use crate::kernel::progs::{Hook, Program};
use spec::{FunctionMode, PointKind, PointSpec};

/// How a target is attached, in the order tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// tp_btf reading paged data through bpf_dynptr_from_skb().
    TpBtfPaged,
    TpBtf,
    RawTp,
    Fentry,
    Kprobe,
    /// An empty tp_btf program: the floor for benchmarks (--bench-floor).
    Floor,
    /// Return values: fexit.
    Fexit,
    /// Return values: a kprobe at entry and a kretprobe at return.
    Kretprobe,
    /// Many functions of a pattern under one kprobe-multi link.
    KprobeMulti,
    /// Many functions of a pattern, one kprobe each (no kprobe-multi).
    KprobeEach,
    /// The same, each function's cookie found by its address (no attach cookies, before 5.15).
    KprobeByAddress,
    /// A function in a user-space process.
    Uprobe,
    /// A USDT probe in a user-space process.
    Usdt,
}

impl Flavour {
    /// Pattern functions: attached together, by one program.
    pub fn is_group(self) -> bool {
        matches!(self, Flavour::KprobeMulti | Flavour::KprobeEach | Flavour::KprobeByAddress)
    }

    pub fn label(self) -> &'static str {
        match self {
            Flavour::TpBtfPaged => "tp_btf (paged data)",
            Flavour::TpBtf => "tp_btf",
            Flavour::RawTp => "raw_tp",
            Flavour::Fentry => "fentry",
            Flavour::Kprobe => "kprobe",
            Flavour::Floor => "tp_btf (empty benchmark floor)",
            Flavour::Fexit => "fexit",
            Flavour::Kretprobe => "kretprobe",
            Flavour::KprobeMulti => "kprobe-multi",
            Flavour::KprobeEach => "kprobe (one per function)",
            Flavour::KprobeByAddress => "kprobe (one per function, by address)",
            Flavour::Uprobe => "uprobe",
            Flavour::Usdt => "usdt",
        }
    }
}

/// One trace point, ready to load.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: PointSpec,
    /// 0-based argument holding the sk_buff.
    pub skb_arg: u32,
    /// 0-based argument handed to extensions.
    pub extra_arg: Option<u32>,
    /// 0-based argument holding an `enum skb_drop_reason`.
    pub reason_arg: Option<u32>,
    /// 0-based argument holding the code address of a drop (kfree_skb's `location`).
    pub location_arg: Option<u32>,
    /// Return probes: the context slot after the arguments, where fexit finds the result.
    pub ret_arg: Option<u32>,
    /// Attach mechanisms to try, best first.
    pub flavours: Vec<Flavour>,
    /// Better mechanisms this kernel does not have, and why (from its features).
    pub passed_over: Vec<(Flavour, String)>,
    /// The kernel frees the skb here: a followed packet's track ends (--track).
    pub frees: bool,
    /// Attached by netcap itself, not asked for: emits nothing (--track's free points).
    pub hidden: bool,
    /// --track's identity hooks: the function makes new skbs from a followed
    /// one, which carry its id on with this lineage.
    pub inherit: Option<Lineage>,
    /// Description of every argument, for --dry-run and `list`.
    pub signature: String,
    /// Where a user-space point is (netcap raw, mbuf); None for the kernel's.
    pub user: Option<user::UserPoint>,
    /// --bpf-progs: the tc or XDP program traced here.
    pub program: Option<ProgramPoint>,
    /// --nft: a netfilter evaluation (nft_do_chain, ipt_do_table), whose
    /// records name the chain or table and its verdict.
    pub netfilter: Option<Netfilter>,
}

/// --nft: which netfilter engine a target's function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netfilter {
    /// nft_do_chain(pkt, priv): one nftables base chain.
    Nftables,
    /// ipt_do_table, ip6t_do_table: one legacy table at one hook; the
    /// argument holding its struct xt_table (the state follows the skb).
    Xtables { table_arg: u32 },
}

/// --bpf-progs: one loaded tc or XDP program, traced at its entry (the
/// packet as it got it) or its exit (its verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramPoint {
    pub id: u32,
    /// The name fentry and fexit attach by (its BTF function's).
    pub function: String,
    pub hook: Hook,
    pub exit: bool,
}

impl ProgramPoint {
    /// `tc:NAME[ID]`, `xdp:NAME[ID]:exit`: the trace point's name in every output.
    pub fn label(&self) -> String {
        format!("{}:{}[{}]{}", self.hook.name(), self.function, self.id, if self.exit { ":exit" } else { "" })
    }
}

impl Target {
    pub fn is_function(&self) -> bool {
        matches!(self.spec.kind, PointKind::Function(_))
    }

    /// The trace point as shown on every event line.
    pub fn label(&self) -> &str {
        &self.spec.name
    }

    /// A point netcap attaches by what it is, not by resolving a `-f` spec
    /// (--bpf-progs, --nft): fexit when it has a result slot (`ret_arg`),
    /// else fentry, with the packet in the first argument.
    fn fixed(name: String, ret_arg: Option<u32>, signature: &str) -> Target {
        let (mode, flavour) = match ret_arg {
            Some(_) => (FunctionMode::Fexit, Flavour::Fexit),
            None => (FunctionMode::Fentry, Flavour::Fentry),
        };
        Target {
            spec: PointSpec { kind: PointKind::Function(mode), name, packet_arg: None, extra_arg: None },
            skb_arg: 0,
            extra_arg: None,
            reason_arg: None,
            location_arg: None,
            ret_arg,
            flavours: vec![flavour],
            passed_over: Vec::new(),
            frees: false,
            hidden: false,
            inherit: None,
            signature: signature.into(),
            user: None,
            program: None,
            netfilter: None,
        }
    }

    /// Whether its packets are skbs (not an XDP program's, not a process's),
    /// so that what is read from the skb can be.
    pub fn has_skb(&self) -> bool {
        self.user.is_none() && self.program.as_ref().is_none_or(|p| p.hook == Hook::Tc)
    }
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("{0}")]
    NftCannot(String),
    #[error(
        "--bpf-progs traces programs by fentry and fexit, which this kernel cannot do ({why}); programs it would trace: {programs}"
    )]
    ProgramsNeedFentry { why: String, programs: String },
    #[error("unknown tracepoint '{name}'{}", suggest(.nearest))]
    UnknownTracepoint { name: String, nearest: Vec<String> },
    #[error("tracepoint '{name}' is in category '{actual}', not '{given}' (write tracepoint:{actual}:{name})")]
    WrongCategory { name: String, given: String, actual: String },
    #[error("unknown kernel function '{name}'{}", suggest(.nearest))]
    UnknownFunction { name: String, nearest: Vec<String> },
    #[error("'{name}' takes no struct sk_buff * argument ({signature}); see `netcap list` for trace points that do")]
    NoSkbArgument { name: String, signature: String },
    #[error(
        "argument {given} of '{name}' is '{actual}', not struct sk_buff *: the skb is argument {right} (write {name}@{right})"
    )]
    WrongSkbArgument { name: String, given: u32, actual: String, right: String },
    #[error("'{name}' has {count} argument(s), so @{given} does not exist ({signature})")]
    NoSuchArgument { name: String, given: u32, count: usize, signature: String },
    #[error(
        "'{name}': its sk_buff is argument {given}, and kprobes read the first {REGISTER_ARGS} arguments only \
         (passed in registers); fentry/fexit can read it where the kernel allows them ({signature})"
    )]
    PastRegisters { name: String, given: u32, signature: String },
    #[error("'{name}' takes struct sk_buff * in arguments {positions}: say which with {name}@N")]
    AmbiguousSkbArgument { name: String, positions: String },
    #[error("'{0}' is given twice")]
    Duplicate(String),
    #[error("'{0}' matches no kernel function that takes a struct sk_buff * and can be traced")]
    EmptyPattern(String),
    #[error("cannot trace {what} on this kernel ({why}); tracepoints that see the same packets: {}", tracepoints_near(.name))]
    NoMechanism { what: String, name: String, why: String },
}

fn suggest(nearest: &[String]) -> String {
    if nearest.is_empty() {
        "; `netcap list` shows every trace point that carries an skb".into()
    } else {
        format!("; nearest: {}", nearest.join(", "))
    }
}

/// What `resolve` made of the specs.
#[derive(Debug)]
pub struct Resolved {
    pub targets: Vec<Target>,
    /// Functions a pattern matched that cannot be attached its way, and why.
    pub skipped: Vec<(String, String)>,
}

/// Resolves every spec. `categories` answers which category a tracepoint
/// is in, when tracefs can tell (None: unknown, accept what was typed).
pub fn resolve(
    specs: &[PointSpec],
    btf: &Btf,
    features: &Features,
    category_of: &dyn Fn(&str) -> Option<String>,
    traceable: &dyn Fn(&str) -> bool,
) -> Result<Resolved, PlanError> {
    let mut targets: Vec<Target> = Vec::new();
    let mut skipped = Vec::new();
    for spec in specs {
        if spec::is_pattern(&spec.name) {
            let matched = expand_pattern(spec, btf, features, traceable, &mut skipped)?;
            for target in matched {
                // A function named explicitly (or by an earlier pattern) keeps that place.
                if !targets.iter().any(|t| t.is_function() && t.spec.name == target.spec.name) {
                    targets.push(target);
                }
            }
            continue;
        }
        let target = resolve_one(spec, btf, features, category_of)?;
        if targets.iter().any(|t| t.spec.name == target.spec.name && t.is_function() == target.is_function()) {
            return Err(PlanError::Duplicate(spec.to_string()));
        }
        targets.push(target);
    }
    skipped.sort();
    skipped.dedup();
    Ok(Resolved { targets, skipped })
}

fn resolve_one(
    spec: &PointSpec,
    btf: &Btf,
    features: &Features,
    category_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, PlanError> {
    let mut passed_over = Vec::new();
    let (params, mut flavours) = match &spec.kind {
        PointKind::Tracepoint { category, raw_only } => {
            let params = btf.tracepoint_params(&spec.name).ok_or_else(|| PlanError::UnknownTracepoint {
                name: spec.name.clone(),
                nearest: nearest(&spec.name, tracepoint_names(btf)),
            })?;
            if let (Some(given), Some(actual)) = (category, category_of(&spec.name))
                && *given != actual
            {
                return Err(PlanError::WrongCategory { name: spec.name.clone(), given: given.clone(), actual });
            }
            let wanted: &[(Flavour, Option<Feature>)] = if *raw_only {
                &[(Flavour::RawTp, None)]
            } else {
                &[
                    (Flavour::TpBtfPaged, Some(Feature::DynptrFromSkb)),
                    (Flavour::TpBtf, Some(Feature::TpBtf)),
                    (Flavour::RawTp, None),
                ]
            };
            (params, available(wanted, features, &mut passed_over))
        }
        PointKind::Function(mode) => {
            let proto = btf.function(&spec.name).ok_or_else(|| PlanError::UnknownFunction {
                name: spec.name.clone(),
                nearest: nearest(&spec.name, skb_function_names(btf)),
            })?;
            let wanted: &[(Flavour, Option<Feature>)] = match mode {
                FunctionMode::Fentry => {
                    &[(Flavour::Fentry, Some(Feature::Fentry)), (Flavour::Kprobe, Some(Feature::Kprobes))]
                }
                FunctionMode::Kprobe => &[(Flavour::Kprobe, Some(Feature::Kprobes))],
                FunctionMode::Fexit => {
                    &[(Flavour::Fexit, Some(Feature::Fentry)), (Flavour::Kretprobe, Some(Feature::Kprobes))]
                }
                FunctionMode::Kretprobe => &[(Flavour::Kretprobe, Some(Feature::Kprobes))],
            };
            (btf.params(proto), available(wanted, features, &mut passed_over))
        }
        PointKind::User => unreachable!("user-space points are resolved by plan::user"),
    };
    let signature = signature(btf, &params);
    let skb_positions: Vec<u32> = params
        .iter()
        .enumerate()
        .filter(|(_, (_, ty))| btf.is_pointer_to_struct(*ty, "sk_buff"))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    let check_exists = |given: u32| {
        if given as usize > params.len() {
            Err(PlanError::NoSuchArgument {
                name: spec.name.clone(),
                given,
                count: params.len(),
                signature: signature.clone(),
            })
        } else {
            Ok(())
        }
    };
    let skb_arg = match spec.packet_arg {
        Some(given) => {
            check_exists(given)?;
            if !skb_positions.contains(&given) {
                if skb_positions.is_empty() {
                    return Err(PlanError::NoSkbArgument { name: spec.name.clone(), signature });
                }
                let right = skb_positions.iter().map(u32::to_string).collect::<Vec<_>>().join(" or ");
                return Err(PlanError::WrongSkbArgument {
                    name: spec.name.clone(),
                    given,
                    actual: btf.type_text(params[given as usize - 1].1),
                    right,
                });
            }
            given
        }
        None => match skb_positions.as_slice() {
            [] => return Err(PlanError::NoSkbArgument { name: spec.name.clone(), signature }),
            [only] => *only,
            many => {
                return Err(PlanError::AmbiguousSkbArgument {
                    name: spec.name.clone(),
                    positions: many.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                });
            }
        },
    };
    if let Some(extra) = spec.extra_arg {
        check_exists(extra)?;
    }
    // Kprobes and kretprobes read the six register arguments (x86-64's
    // calling convention): a later skb leaves fentry/fexit as the only way.
    if skb_arg > REGISTER_ARGS && !flavours.is_empty() {
        flavours.retain(|f| !matches!(f, Flavour::Kprobe | Flavour::Kretprobe));
        if flavours.is_empty() {
            return Err(PlanError::PastRegisters { name: spec.name.clone(), given: skb_arg, signature });
        }
    }
    // A mistake in what was typed is said first; then whether this kernel can attach it at all.
    if flavours.is_empty() {
        let why: Vec<&str> = passed_over.iter().map(|(_, why)| why.as_str()).collect();
        return Err(PlanError::NoMechanism {
            what: format!("kernel function {}", spec.name),
            name: spec.name.clone(),
            why: why.join("; "),
        });
    }
    // Drop points say why: the argument typed `enum skb_drop_reason`; the
    // kfree_skb tracepoint also says where, in its `void *location`.
    let position = |wanted: &dyn Fn(u32) -> bool| params.iter().position(|(_, ty)| wanted(*ty)).map(|i| i as u32);
    let reason_arg = position(&|ty| {
        let ty = btf.resolve(ty);
        matches!(btf.kind(ty), Kind::Enum { .. }) && btf.name(ty) == "skb_drop_reason"
    });
    // Before 5.17 the kfree_skb tracepoint has no reason, but every event of
    // it is a drop (consume_skb is the other way out), and it says where.
    let drop_tracepoint = reason_arg.is_some() || spec.name == "kfree_skb";
    let location_arg = match &spec.kind {
        PointKind::Tracepoint { .. } if drop_tracepoint => {
            position(&|ty| matches!(btf.kind(btf.resolve(ty)), Kind::Ptr { target: 0 }))
        }
        _ => None,
    };
    Ok(Target {
        spec: spec.clone(),
        skb_arg: skb_arg - 1,
        extra_arg: spec.extra_arg.map(|n| n - 1),
        reason_arg,
        location_arg,
        ret_arg: matches!(spec.kind, PointKind::Function(FunctionMode::Fexit | FunctionMode::Kretprobe))
            .then_some(params.len() as u32),
        flavours,
        passed_over,
        frees: frees_the_skb(spec),
        hidden: false,
        inherit: None,
        signature,
        user: None,
        program: None,
        netfilter: None,
    })
}

/// Where the kernel frees an skb: the tracepoints both ways out, and the
/// functions under them.
fn frees_the_skb(spec: &PointSpec) -> bool {
    match spec.kind {
        PointKind::Tracepoint { .. } => matches!(spec.name.as_str(), "kfree_skb" | "consume_skb"),
        PointKind::Function(_) => matches!(
            spec.name.as_str(),
            "kfree_skb_reason" | "sk_skb_reason_drop" | "__kfree_skb" | "kfree_skbmem" | "consume_skb"
        ),
        PointKind::User => false,
    }
}

/// --track: the free points the user did not list, added hidden, so that
/// every followed skb's track ends when the kernel frees it.
pub fn with_track_ends(targets: &mut Vec<Target>, btf: &Btf, features: &Features) -> Result<Vec<String>, PlanError> {
    let mut added = Vec::new();
    for name in ["kfree_skb", "consume_skb"] {
        let listed = targets.iter().any(|t| matches!(t.spec.kind, PointKind::Tracepoint { .. }) && t.spec.name == name);
        if listed {
            continue;
        }
        let spec = spec::parse_list(&format!("tracepoint:skb:{name}"))?.remove(0);
        let mut target = resolve_one(&spec, btf, features, &|_| None)?;
        target.hidden = true;
        targets.push(target);
        added.push(format!("skb:{name}"));
    }
    Ok(added)
}

/// --bpf-progs: an entry and an exit target for each program, by fentry
/// and fexit (nothing else can attach to a BPF program).
pub fn with_programs(targets: &mut Vec<Target>, programs: &[&Program], features: &Features) -> Result<(), PlanError> {
    if !features.has(Feature::Fentry) {
        let names: Vec<String> = programs.iter().map(|p| format!("{}[{}]", p.function, p.id)).collect();
        return Err(PlanError::ProgramsNeedFentry {
            why: features.why_missing(Feature::Fentry),
            programs: if names.is_empty() { "none loaded".into() } else { names.join(", ") },
        });
    }
    for program in programs {
        for exit in [false, true] {
            let point = ProgramPoint { id: program.id, function: program.function.clone(), hook: program.hook, exit };
            let signature = match program.hook {
                Hook::Tc => "struct __sk_buff *skb",
                Hook::Xdp => "struct xdp_md *ctx",
            };
            let mut target = Target::fixed(point.label(), exit.then_some(1), signature);
            target.program = Some(point);
            targets.push(target);
        }
    }
    Ok(())
}

/// --nft: fexit on nft_do_chain(pkt, priv), where every nftables base
/// chain is evaluated, and on ipt_do_table and ip6t_do_table, where every
/// legacy iptables table is, for the engines the kernel has loaded. Their
/// types are their modules': fexit finds the functions, and CO-RE their
/// structs, in each module's BTF (or vmlinux's, when built in), which is
/// put into `btf` to read the legacy functions' argument order (it changed
/// in 6.2). Returns what was left out, for the start line.
pub fn with_nft(
    targets: &mut Vec<Target>,
    btf: &mut Btf,
    features: &Features,
    module: impl Fn(&str) -> Module,
) -> Result<Option<String>, PlanError> {
    const NFT: &str = "nft_do_chain";
    const LEGACY: [(&str, &str); 2] = [("ip_tables", "ipt_do_table"), ("ip6_tables", "ip6t_do_table")];
    if !features.has(Feature::Fentry) {
        return Err(PlanError::NftCannot(format!(
            "--nft traces {NFT}, nft_trace_notify and ipt_do_table by fentry and fexit, which this kernel cannot do ({})",
            features.why_missing(Feature::Fentry)
        )));
    }
    let before = targets.len();
    let mut without_btf = Vec::new();
    if engine_here(btf, &module, "nf_tables", NFT, &mut without_btf)? {
        let mut target = Target::fixed(NFT.into(), Some(2), "const struct nft_pktinfo *pkt, void *priv");
        target.netfilter = Some(Netfilter::Nftables);
        targets.push(target);
    }
    for (name, function) in LEGACY {
        if !engine_here(btf, &module, name, function, &mut without_btf)? {
            continue;
        }
        let Some(target) = legacy_table_target(btf, function) else {
            return Err(PlanError::NftCannot(format!(
                "--nft: {function} takes arguments netcap does not know here (it knows (priv, skb, state) and \
                 (skb, state, table))"
            )));
        };
        targets.push(target);
    }
    let engines = targets.len() - before;
    let missing = match without_btf.as_slice() {
        [] => None,
        [one] => Some(format!("the {one} module has no BTF here")),
        [first @ .., last] => Some(format!("the {} and {last} modules have no BTF here", first.join(", "))),
    }
    .map(|what| {
        format!(
            "{what} (/sys/kernel/btf/MODULE; Linux 5.11+ with CONFIG_DEBUG_INFO_BTF_MODULES), which fexit on \
             its functions and reading its structs need"
        )
    });
    match (engines, missing) {
        (0, Some(missing)) => Err(PlanError::NftCannot(format!("--nft: {missing}"))),
        (0, None) => Err(PlanError::NftCannot(
            "--nft: neither nf_tables nor ip_tables nor ip6_tables is loaded, so no netfilter table sees packets \
             (load a ruleset with nft or iptables first)"
                .into(),
        )),
        (_, missing) => Ok(missing.map(|m| format!("--nft: {m}: its tables are not traced"))),
    }
}

/// Whether `function`, an engine's evaluation, can be traced: built into
/// vmlinux, or in `module` loaded with BTF (its split BTF is read then, so
/// the function's arguments resolve). A module without BTF is noted in
/// `without_btf`.
fn engine_here(
    btf: &mut Btf,
    module: &impl Fn(&str) -> Module,
    name: &'static str,
    function: &str,
    without_btf: &mut Vec<&'static str>,
) -> Result<bool, PlanError> {
    if btf.function(function).is_some() {
        return Ok(true);
    }
    match module(name) {
        Module::Absent => Ok(false),
        Module::WithoutBtf => {
            without_btf.push(name);
            Ok(false)
        }
        Module::WithBtf(split) => {
            btf.use_split(&split).map_err(|err| PlanError::NftCannot(format!("--nft: {err}")))?;
            Ok(true)
        }
    }
}

/// ipt_do_table(priv, skb, state) from 6.2 (and Debian's 6.1), (skb,
/// state, table) before: which argument is which, from BTF; None for any
/// other order.
fn legacy_table_target(btf: &Btf, function: &str) -> Option<Target> {
    let params = btf.params(btf.function(function)?);
    let skb = params.iter().position(|&(_, id)| btf.is_pointer_to_struct(id, "sk_buff"))?;
    params.get(skb + 1).filter(|&&(_, id)| btf.is_pointer_to_struct(id, "nf_hook_state"))?;
    let table = params.iter().position(|&(name, id)| name == "priv" || btf.is_pointer_to_struct(id, "xt_table"))?;
    let signature =
        params.iter().map(|&(name, id)| format!("{} {name}", btf.type_text(id))).collect::<Vec<_>>().join(", ");
    let mut target = Target::fixed(function.into(), Some(params.len() as u32), &signature);
    target.skb_arg = skb as u32;
    target.netfilter = Some(Netfilter::Xtables { table_arg: table as u32 });
    Some(target)
}

/// --track: the kernel functions that make new skbs from one, how what
/// they make is related to it, and how each is attached (fexit or
/// kretprobe: the result is what counts). skb_gro_receive(p, skb) merges
/// skb (@2) into p (@1); pskb_expand_head keeps the skb, so its track.
const IDENTITY_HOOKS: [(&str, Lineage); 6] = [
    ("fexit:skb_clone", Lineage::Clone),
    ("fexit:skb_copy", Lineage::Copy),
    ("fexit:__pskb_copy_fclone", Lineage::Copy),
    ("fexit:skb_copy_expand", Lineage::Copy),
    ("fexit:skb_segment", Lineage::Segment),
    ("fexit:skb_gro_receive@2@1", Lineage::Merged),
];

/// What --track's identity hooks could and could not be attached to.
#[derive(Debug, Default)]
pub struct IdentityHooks {
    /// The functions hooked, each with how its result is related.
    pub hooked: Vec<(String, Lineage)>,
    /// The others: the function, how its result is related, why it cannot be hooked.
    pub missing: Vec<(String, Lineage, String)>,
}

/// --track: hidden fexit (or kretprobe) hooks on the functions that make
/// new skbs from one, so clones, copies, GSO segments and GRO merges keep
/// the track. Where the kernel has neither fentry nor kprobes, or a
/// function cannot be traced, it says what will not be followed.
pub fn with_identity_hooks(
    targets: &mut Vec<Target>,
    btf: &Btf,
    features: &Features,
    traceable: &dyn Fn(&str) -> bool,
) -> IdentityHooks {
    let mut hooks = IdentityHooks::default();
    for (text, lineage) in IDENTITY_HOOKS {
        let spec = match spec::parse_list(text) {
            Ok(mut specs) => specs.remove(0),
            Err(error) => unreachable!("identity hook '{text}' does not parse: {error}"),
        };
        let resolved = resolve_one(&spec, btf, features, &|_| None);
        match resolved {
            Ok(_) if !traceable(&spec.name) => {
                hooks.missing.push((spec.name.clone(), lineage, "not in available_filter_functions".into()));
            }
            Ok(mut target) => {
                target.hidden = true;
                target.inherit = Some(lineage);
                hooks.hooked.push((spec.name.clone(), lineage));
                targets.push(target);
            }
            Err(PlanError::NoMechanism { why, .. }) => hooks.missing.push((spec.name.clone(), lineage, why)),
            Err(error) => hooks.missing.push((spec.name.clone(), lineage, error.to_string())),
        }
    }
    hooks
}

/// The flavours whose feature this kernel has, in order; the others are
/// noted in `passed_over` with the reason.
fn available(
    wanted: &[(Flavour, Option<Feature>)],
    features: &Features,
    passed_over: &mut Vec<(Flavour, String)>,
) -> Vec<Flavour> {
    let mut flavours = Vec::new();
    for &(flavour, needs) in wanted {
        match needs {
            Some(feature) if !features.has(feature) => passed_over.push((flavour, features.why_missing(feature))),
            _ => flavours.push(flavour),
        }
    }
    flavours
}

/// Tracepoints that see the same packets as a kernel function, by which
/// way the function's name says it goes.
pub fn tracepoints_near(function: &str) -> &'static str {
    let receive = ["rcv", "recv", "receive", "deliver", "input", "gro", "napi"];
    let transmit = ["xmit", "output", "send", "queue", "transmit", "finish_output"];
    if transmit.iter().any(|w| function.contains(w)) {
        "tracepoint:net:net_dev_queue, tracepoint:net:net_dev_start_xmit, tracepoint:net:net_dev_xmit"
    } else if receive.iter().any(|w| function.contains(w)) {
        "tracepoint:net:netif_receive_skb, tracepoint:net:napi_gro_receive_entry, tracepoint:skb:kfree_skb"
    } else {
        "tracepoint:net:netif_receive_skb, tracepoint:net:net_dev_queue, tracepoint:skb:kfree_skb, tracepoint:skb:consume_skb"
    }
}

/// Arguments a kprobe reads from registers (x86-64 passes six).
pub const REGISTER_ARGS: u32 = 6;

/// Every kernel function matching a pattern, each with its skb argument,
/// in name order; attached together by kprobe-multi (or one kprobe each).
fn expand_pattern(
    spec: &PointSpec,
    btf: &Btf,
    features: &Features,
    traceable: &dyn Fn(&str) -> bool,
    skipped: &mut Vec<(String, String)>,
) -> Result<Vec<Target>, PlanError> {
    if !features.has(Feature::Kprobes) {
        return Err(PlanError::NoMechanism {
            what: format!("the kernel functions of '{}'", spec.name),
            name: spec.name.clone(),
            why: format!("patterns attach by kprobes: {}", features.why_missing(Feature::Kprobes)),
        });
    }
    // Best first: one kprobe-multi link; one kprobe each with its cookie;
    // one kprobe each told apart by address (no cookies before 5.15).
    let mut passed_over = Vec::new();
    let group = available(
        &[
            (Flavour::KprobeMulti, Some(Feature::KprobeMulti)),
            (Flavour::KprobeEach, Some(Feature::AttachCookie)),
            (Flavour::KprobeByAddress, None),
        ],
        features,
        &mut passed_over,
    );
    let mut names: Vec<&str> = skb_function_names(btf)
        .into_iter()
        .filter(|name| spec::glob_matches(&spec.name, name) && traceable(name))
        .collect();
    names.sort_unstable();
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let one = PointSpec { name: name.to_string(), ..spec.clone() };
        // Ambiguous or too-far skb positions are skipped, and said: a pattern takes what it can.
        let mut target = match resolve_one(&one, btf, features, &|_| None) {
            Ok(target) => target,
            Err(err) => {
                skipped.push((name.to_string(), err.to_string()));
                continue;
            }
        };
        // 0-based here: the six register arguments are 0..=5.
        if target.skb_arg >= REGISTER_ARGS || target.reason_arg.is_some_and(|r| r >= REGISTER_ARGS) {
            skipped.push((name.to_string(), format!("its sk_buff or drop reason is past argument {REGISTER_ARGS}")));
            continue;
        }
        target.flavours = group.clone();
        target.passed_over = passed_over.clone();
        targets.push(target);
    }
    if targets.is_empty() {
        return Err(PlanError::EmptyPattern(spec.to_string()));
    }
    Ok(targets)
}

/// "(struct sk_buff *skb, struct net_device *dev, ...)"
pub fn signature(btf: &Btf, params: &[(&str, u32)]) -> String {
    let args: Vec<String> = params
        .iter()
        .map(|(name, ty)| {
            let ty = btf.type_text(*ty);
            if ty.ends_with('*') || name.is_empty() { format!("{ty}{name}") } else { format!("{ty} {name}") }
        })
        .collect();
    format!("({})", args.join(", "))
}

pub fn tracepoint_names(btf: &Btf) -> Vec<&str> {
    btf.names().filter_map(|name| name.strip_prefix("btf_trace_")).collect()
}

/// Kernel functions with at least one `struct sk_buff *` parameter.
pub fn skb_function_names(btf: &Btf) -> Vec<&str> {
    btf.names()
        .filter(|name| {
            btf.function(name)
                .is_some_and(|proto| btf.params(proto).iter().any(|(_, ty)| btf.is_pointer_to_struct(*ty, "sk_buff")))
        })
        .collect()
}

/// Up to five names closest to `wanted`: containing it first, then by edit distance.
pub fn nearest(wanted: &str, candidates: Vec<&str>) -> Vec<String> {
    let limit = (wanted.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|name| {
            if name.contains(wanted) || (wanted.len() >= 4 && wanted.contains(name) && name.len() >= 4) {
                Some((name.len().abs_diff(wanted.len()) / 8, name))
            } else {
                let distance = edit_distance(wanted, name);
                (distance <= limit).then_some((distance, name))
            }
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.to_string()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flavours: Vec<&str> = self.flavours.iter().map(|f| f.label()).collect();
        if let Some(user) = &self.user {
            return write!(f, "{}: {user}, attach by {}", self.spec, flavours.join(" → "));
        }
        write!(
            f,
            "{}: skb = argument {}{}, attach by {} {}",
            self.spec,
            self.skb_arg + 1,
            self.extra_arg.map(|n| format!(", extra = argument {}", n + 1)).unwrap_or_default(),
            flavours.join(" → "),
            self.signature
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn btf() -> Btf {
        Btf::from_file(Path::new("/sys/kernel/btf/vmlinux")).expect("the test machine's kernel has BTF")
    }

    fn plan(list: &str) -> Result<Vec<Target>, PlanError> {
        let btf = btf();
        let specs = spec::parse_list(list)?;
        resolve(
            &specs,
            &btf,
            &Features::everything(),
            &|name| (name == "kfree_skb").then(|| "skb".to_string()),
            &|_| true,
        )
        .map(|r| r.targets)
    }

    #[test]
    fn nft_traces_each_engine_with_its_arguments_read_from_btf() {
        // This machine builds nf_tables, ip_tables and ip6_tables in: vmlinux has all three.
        let mut btf = btf();
        let mut targets = Vec::new();
        let left_out = with_nft(&mut targets, &mut btf, &Features::everything(), |_| Module::Absent).unwrap();
        assert_eq!(left_out, None);
        let got: Vec<_> = targets.iter().map(|t| (t.spec.name.as_str(), t.skb_arg, t.ret_arg, t.netfilter)).collect();
        // 6.2 on: ipt_do_table(void *priv, struct sk_buff *skb, const struct nf_hook_state *state).
        let legacy = Some(Netfilter::Xtables { table_arg: 0 });
        assert_eq!(
            got,
            [
                ("nft_do_chain", 0, Some(2), Some(Netfilter::Nftables)),
                ("ipt_do_table", 1, Some(3), legacy),
                ("ip6t_do_table", 1, Some(3), legacy)
            ]
        );
        assert!(targets[1].signature.contains("struct sk_buff * skb"), "{}", targets[1].signature);
        let refused = with_nft(&mut Vec::new(), &mut btf, &Features::everything().without(&[Feature::Fentry]), |_| {
            Module::Absent
        })
        .unwrap_err();
        assert!(refused.to_string().contains("by fentry and fexit, which this kernel cannot do"), "{refused}");
    }

    #[test]
    fn finds_the_skb_argument_from_btf() {
        let targets = plan("tracepoint:net:netif_receive_skb,ip_rcv,ip_local_deliver_finish,tp:skb:kfree_skb").unwrap();
        let positions: Vec<u32> = targets.iter().map(|t| t.skb_arg + 1).collect();
        // ip_local_deliver_finish(struct net *, struct sock *, struct sk_buff *)
        assert_eq!(positions, [1, 1, 3, 1]);
        assert_eq!(targets[0].flavours, [Flavour::TpBtfPaged, Flavour::TpBtf, Flavour::RawTp]);
        assert_eq!(targets[1].flavours, [Flavour::Fentry, Flavour::Kprobe]);
    }

    #[test]
    fn the_kernels_features_pick_the_mechanisms() {
        let btf = btf();
        let specs =
            spec::parse_list("tp:net:netif_receive_skb,icmp_rcv,fexit:ip_rcv,'tcp_v4_*'".replace('\'', "").as_str())
                .unwrap();
        let resolve_with = |missing: &[Feature]| {
            resolve(&specs, &btf, &Features::everything().without(missing), &|_| None, &|_| true).map(|r| r.targets)
        };
        // 5.10: no paged reads, no kprobe-multi, no cookies.
        let old = resolve_with(&[Feature::DynptrFromSkb, Feature::KprobeMulti, Feature::AttachCookie]).unwrap();
        assert_eq!(old[0].flavours, [Flavour::TpBtf, Flavour::RawTp]);
        assert_eq!(old[0].passed_over, [(Flavour::TpBtfPaged, "no dynptr_from_skb here: absent in this test".into())]);
        assert_eq!(old[1].flavours, [Flavour::Fentry, Flavour::Kprobe]);
        assert!(old[3..].iter().all(|t| t.flavours == [Flavour::KprobeByAddress] && t.passed_over.len() == 2));
        // This host: no fentry, no kprobes.
        let host = resolve_with(&[Feature::Fentry, Feature::Kprobes, Feature::KprobeMulti]).unwrap_err().to_string();
        assert!(host.starts_with("cannot trace kernel function icmp_rcv on this kernel (no fentry here"), "{host}");
        assert!(host.contains("no kprobes here"), "{host}");
        let fentry_only = resolve_with(&[Feature::Kprobes]).unwrap_err().to_string();
        assert!(
            fentry_only.contains("the kernel functions of 'tcp_v4_*'")
                && fentry_only.contains("patterns attach by kprobes"),
            "{fentry_only}"
        );
        let no_fentry = resolve_with(&[Feature::Fentry]).unwrap();
        assert_eq!(
            (no_fentry[1].flavours.as_slice(), no_fentry[2].flavours.as_slice()),
            (&[Flavour::Kprobe][..], &[Flavour::Kretprobe][..])
        );
    }

    #[test]
    fn accepts_the_seed_examples_as_written() {
        let targets =
            plan("tracepoint:net:netif_receive_skb,ip_local_deliver@1,ip_local_deliver_finish@3,icmp_rcv@1").unwrap();
        assert_eq!(targets.len(), 4);
    }

    #[test]
    fn drop_points_carry_their_reason_and_location_arguments() {
        let targets = plan("tp:skb:kfree_skb,tp:net:netif_receive_skb,sk_skb_reason_drop,tp:skb:consume_skb").unwrap();
        // kfree_skb(skb, location, reason, rx_sk)
        assert_eq!((targets[0].reason_arg, targets[0].location_arg), (Some(2), Some(1)));
        assert_eq!((targets[1].reason_arg, targets[1].location_arg), (None, None));
        // sk_skb_reason_drop(sk, skb, reason): a function says why, not where.
        assert_eq!((targets[2].reason_arg, targets[2].location_arg), (Some(2), None));
        assert_eq!(targets[3].reason_arg, None);
    }

    #[test]
    fn kprobes_read_all_six_register_arguments() {
        // icmp_glue_bits(void *from, char *to, int offset, int len, int odd, struct sk_buff *skb):
        // the sixth argument is in r9, which a kprobe reads (issue 23 found it refused, and
        // tcp_make_synack's error claiming five arguments where it has six).
        assert_eq!(plan("icmp_glue_bits").unwrap()[0].flavours, [Flavour::Fentry, Flavour::Kprobe]);
        assert_eq!(plan("kprobe:icmp_glue_bits").unwrap()[0].skb_arg, 5);
        assert_eq!(plan("fexit:icmp_glue_bits").unwrap()[0].flavours, [Flavour::Fexit, Flavour::Kretprobe]);
        let synack = plan("kprobe:tcp_make_synack").unwrap();
        assert_eq!(synack[0].skb_arg, 5);
        let message = PlanError::PastRegisters { name: "f".into(), given: 7, signature: "…".into() }.to_string();
        assert!(message.contains("argument 7") && message.contains("first 6 arguments"), "{message}");
    }

    #[test]
    fn return_probes_know_where_the_result_is() {
        let targets = plan("fexit:ip_rcv,kretprobe:ip_local_deliver_finish,ip_rcv_finish").unwrap();
        assert_eq!(
            (targets[0].ret_arg, targets[0].flavours.clone()),
            (Some(4), vec![Flavour::Fexit, Flavour::Kretprobe])
        );
        assert_eq!((targets[1].ret_arg, targets[1].flavours.clone()), (Some(3), vec![Flavour::Kretprobe]));
        assert_eq!(targets[2].ret_arg, None);
    }

    #[test]
    fn a_wrong_position_names_the_right_one() {
        let message = plan("ip_local_deliver_finish@1").unwrap_err().to_string();
        assert!(message.contains("argument 1 of 'ip_local_deliver_finish' is 'struct net *'"), "{message}");
        assert!(message.contains("the skb is argument 3 (write ip_local_deliver_finish@3)"), "{message}");
        let message = plan("icmp_rcv@4").unwrap_err().to_string();
        assert!(message.contains("has 1 argument(s), so @4 does not exist"), "{message}");
    }

    #[test]
    fn unknown_names_come_with_the_nearest_real_ones() {
        let message = plan("icmp_rvc").unwrap_err().to_string();
        assert!(message.starts_with("unknown kernel function 'icmp_rvc'; nearest: "), "{message}");
        assert!(message.contains("icmp_rcv"), "{message}");
        let message = plan("tracepoint:net:netif_recieve_skb").unwrap_err().to_string();
        assert!(message.contains("nearest: netif_receive_skb"), "{message}");
        let message = plan("tracepoint:net:kfree_skb").unwrap_err().to_string();
        assert!(message.contains("write tracepoint:skb:kfree_skb"), "{message}");
    }

    #[test]
    fn points_without_an_skb_are_refused() {
        let message = plan("tracepoint:sched:sched_switch").unwrap_err().to_string();
        assert!(message.contains("takes no struct sk_buff * argument"), "{message}");
        let message = plan("schedule").unwrap_err().to_string();
        assert!(message.contains("takes no struct sk_buff *"), "{message}");
        assert!(matches!(plan("ip_rcv,ip_rcv@1"), Err(PlanError::Duplicate(_))));
    }

    #[test]
    fn patterns_expand_to_every_traceable_skb_function() {
        let targets = plan("ip_rcv,ip_*").unwrap();
        assert_eq!(targets[0].spec.name, "ip_rcv");
        assert_eq!(targets[0].flavours, [Flavour::Fentry, Flavour::Kprobe]);
        assert!(targets.len() > 5, "{}", targets.len());
        assert_eq!(targets.iter().filter(|t| t.spec.name == "ip_rcv").count(), 1, "no duplicate");
        for target in &targets[1..] {
            assert!(target.spec.name.starts_with("ip_"), "{}", target.spec.name);
            assert_eq!(target.flavours, [Flavour::KprobeMulti, Flavour::KprobeEach, Flavour::KprobeByAddress]);
        }
        let local_deliver = targets.iter().find(|t| t.spec.name == "ip_local_deliver_finish").unwrap();
        assert_eq!(local_deliver.skb_arg, 2);
        assert!(matches!(plan("no_such_prefix_*"), Err(PlanError::EmptyPattern(_))));
    }

    #[test]
    fn functions_a_pattern_cannot_take_are_named_with_why() {
        let btf = btf();
        let specs = spec::parse_list("skb_*").unwrap();
        let resolved = resolve(&specs, &btf, &Features::everything(), &|_| None, &|_| true).unwrap();
        // skb_try_coalesce(struct sk_buff *to, struct sk_buff *from, ...): which one is the packet?
        let (_, why) = resolved.skipped.iter().find(|(name, _)| name == "skb_try_coalesce").expect("skipped");
        assert!(why.contains("arguments 1, 2"), "{why}");
        for (name, _) in &resolved.skipped {
            assert!(resolved.targets.iter().all(|t| &t.spec.name != name), "{name} both taken and skipped");
        }
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("icmp_rcv", "icmp_rcv"), 0);
        assert_eq!(edit_distance("icmp_rvc", "icmp_rcv"), 2);
        assert_eq!(edit_distance("ip_rcv", "ip6_rcv"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
