//! The `-f` trace point syntax: `[prefix:]name[@p1[@p2]]`, comma-separated.
//! Pure parsing; whether the name exists is the resolver's business.

use std::fmt;

use thiserror::Error;

/// Highest argument number accepted after `@` (kernel functions take at
/// most 12 arguments in BTF-enabled tracing).
pub const MAX_ARG: u32 = 12;

/// How the user asked a kernel function to be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionMode {
    /// No prefix or `fentry:`: fentry, falling back to kprobe.
    Fentry,
    /// `kprobe:`: kprobe only.
    Kprobe,
    /// `fexit:`: fexit, falling back to kretprobe; reports the return value.
    Fexit,
    /// `kretprobe:`: kretprobe only.
    Kretprobe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointKind {
    /// `tracepoint:cat:name`, `tp:cat:name` (tp_btf, falling back to raw_tp)
    /// or `raw_tp:[cat:]name` (raw_tp only).
    Tracepoint {
        category: Option<String>,
        raw_only: bool,
    },
    Function(FunctionMode),
    /// A function or USDT probe in a user-space process (netcap raw, mbuf);
    /// the name is shown as the user wrote it.
    User,
}

/// One parsed trace point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointSpec {
    pub kind: PointKind,
    pub name: String,
    /// 1-based argument holding the packet (`@p1`), if given.
    pub packet_arg: Option<u32>,
    /// 1-based argument handed to extensions (`@p2`), if given.
    pub extra_arg: Option<u32>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("empty trace point in '{0}' (write e.g. -f ip_rcv,tracepoint:net:netif_receive_skb)")]
    Empty(String),
    #[error("a trace point of {0} bytes starting '{1}…': names are at most {SPEC_MAX} bytes")]
    TooLong(usize, String),
    #[error("a trace point containing a control character ('{0}'): names are printable")]
    Unprintable(String),
    #[error(
        "'{spec}': unknown prefix '{prefix}:' (use tracepoint:, tp:, raw_tp:, fentry:, kprobe:, fexit: or kretprobe:)"
    )]
    UnknownPrefix { spec: String, prefix: String },
    #[error("'{0}': a tracepoint is written tracepoint:CATEGORY:NAME (e.g. tracepoint:skb:kfree_skb)")]
    TracepointShape(String),
    #[error("'{0}': the name is missing")]
    MissingName(String),
    #[error("'{spec}': '{name}' is not a valid name (letters, digits, '_' and '.' only)")]
    BadName { spec: String, name: String },
    #[error("'{spec}': '@{arg}' is not an argument number (write @1 to @{max})", max = MAX_ARG)]
    BadArg { spec: String, arg: String },
    #[error("'{0}': at most two argument numbers may follow the name (NAME@PACKET@EXTRA)")]
    TooManyArgs(String),
    #[error("'{0}': a pattern matches many functions, so the skb's position comes from each one's BTF (drop the @N)")]
    PatternWithArg(String),
}

/// True for names with glob characters (`tcp_v4_*`, `*`).
pub fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// Glob matching with `*` (any run) and `?` (any one character).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl fmt::Display for PointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PointKind::Tracepoint { category, raw_only } => {
                f.write_str(if *raw_only { "raw_tp:" } else { "tracepoint:" })?;
                if let Some(category) = category {
                    write!(f, "{category}:")?;
                }
            }
            PointKind::Function(FunctionMode::Fentry) => {}
            PointKind::Function(FunctionMode::Kprobe) => f.write_str("kprobe:")?,
            PointKind::Function(FunctionMode::Fexit) => f.write_str("fexit:")?,
            PointKind::Function(FunctionMode::Kretprobe) => f.write_str("kretprobe:")?,
            PointKind::User => {}
        }
        f.write_str(&self.name)?;
        if let Some(p1) = self.packet_arg {
            write!(f, "@{p1}")?;
        }
        if let Some(p2) = self.extra_arg {
            write!(f, "@{p2}")?;
        }
        Ok(())
    }
}

/// Parses a comma-separated `-f` list (also accepts repeated `-f`).
/// Longest `-f` entry taken (kernel symbols are far shorter): a longer one
/// is not echoed whole in errors.
pub const SPEC_MAX: usize = 512;

pub fn parse_list(list: &str) -> Result<Vec<PointSpec>, SpecError> {
    list.split(',').map(str::trim).map(|spec| check_text(spec).and_then(|()| parse_one(spec))).collect()
}

/// What any `-f` entry must be before it is parsed, or echoed in an error.
pub fn check_text(spec: &str) -> Result<(), SpecError> {
    if spec.len() > SPEC_MAX {
        let start: String = spec.chars().take(32).filter(|c| !c.is_control()).collect();
        return Err(SpecError::TooLong(spec.len(), start));
    }
    if spec.chars().any(char::is_control) {
        return Err(SpecError::Unprintable(spec.escape_debug().to_string()));
    }
    Ok(())
}

pub fn parse_one(spec: &str) -> Result<PointSpec, SpecError> {
    if spec.is_empty() {
        return Err(SpecError::Empty(spec.to_string()));
    }
    let mut at_parts = spec.split('@');
    let head = at_parts.next().unwrap_or_default();
    let args: Vec<&str> = at_parts.collect();
    if args.len() > 2 {
        return Err(SpecError::TooManyArgs(spec.to_string()));
    }
    let parse_arg = |arg: &str| -> Result<u32, SpecError> {
        match arg.parse::<u32>() {
            Ok(n) if (1..=MAX_ARG).contains(&n) => Ok(n),
            _ => Err(SpecError::BadArg { spec: spec.to_string(), arg: arg.to_string() }),
        }
    };
    let packet_arg = args.first().map(|a| parse_arg(a)).transpose()?;
    let extra_arg = args.get(1).map(|a| parse_arg(a)).transpose()?;

    let parts: Vec<&str> = head.split(':').collect();
    let (kind, name) = match parts.as_slice() {
        [name] => (PointKind::Function(FunctionMode::Fentry), *name),
        [prefix, rest @ ..] => {
            let function = |mode| match rest {
                [name] => Ok((PointKind::Function(mode), *name)),
                _ => Err(SpecError::BadName { spec: spec.to_string(), name: rest.join(":") }),
            };
            match *prefix {
                "tracepoint" | "tp" | "raw_tp" | "raw_tracepoint" => {
                    let raw_only = prefix.starts_with("raw");
                    match rest {
                        [category, name] => {
                            if category.is_empty() {
                                return Err(SpecError::TracepointShape(spec.to_string()));
                            }
                            (PointKind::Tracepoint { category: Some(category.to_string()), raw_only }, *name)
                        }
                        [name] => (PointKind::Tracepoint { category: None, raw_only }, *name),
                        _ => return Err(SpecError::TracepointShape(spec.to_string())),
                    }
                }
                "fentry" => function(FunctionMode::Fentry)?,
                "kprobe" => function(FunctionMode::Kprobe)?,
                "fexit" => function(FunctionMode::Fexit)?,
                "kretprobe" => function(FunctionMode::Kretprobe)?,
                other => return Err(SpecError::UnknownPrefix { spec: spec.to_string(), prefix: other.to_string() }),
            }
        }
        [] => return Err(SpecError::Empty(spec.to_string())),
    };
    if name.is_empty() {
        return Err(SpecError::MissingName(spec.to_string()));
    }
    // '.' appears in compiler-made names such as ip_rcv_core.isra.0; '*'
    // and '?' make a kernel-function pattern.
    let wildcard_allowed = matches!(kind, PointKind::Function(FunctionMode::Fentry | FunctionMode::Kprobe));
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || (wildcard_allowed && (c == '*' || c == '?')))
    {
        return Err(SpecError::BadName { spec: spec.to_string(), name: name.to_string() });
    }
    if is_pattern(name) && packet_arg.is_some() {
        return Err(SpecError::PatternWithArg(spec.to_string()));
    }
    Ok(PointSpec { kind, name: name.to_string(), packet_arg, extra_arg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_or_unprintable_entries_are_refused_without_being_echoed() {
        let huge = "a".repeat(100_000);
        let err = parse_list(&huge).unwrap_err().to_string();
        assert!(err.len() < 200 && err.contains("100000 bytes"), "{err}");
        let err = parse_list("ip_rcv\n\x1b[31m").unwrap_err().to_string();
        assert!(!err.contains('\n') && !err.contains('\x1b'), "{err:?}");
    }

    fn function(name: &str, mode: FunctionMode, p1: Option<u32>, p2: Option<u32>) -> PointSpec {
        PointSpec { kind: PointKind::Function(mode), name: name.into(), packet_arg: p1, extra_arg: p2 }
    }

    fn tracepoint(category: Option<&str>, name: &str, raw_only: bool) -> PointSpec {
        PointSpec {
            kind: PointKind::Tracepoint { category: category.map(Into::into), raw_only },
            name: name.into(),
            packet_arg: None,
            extra_arg: None,
        }
    }

    #[test]
    fn parses_every_netcap_form() {
        assert_eq!(parse_one("icmp_rcv").unwrap(), function("icmp_rcv", FunctionMode::Fentry, None, None));
        assert_eq!(parse_one("icmp_rcv@1").unwrap(), function("icmp_rcv", FunctionMode::Fentry, Some(1), None));
        assert_eq!(
            parse_one("ip_local_deliver_finish@3").unwrap(),
            function("ip_local_deliver_finish", FunctionMode::Fentry, Some(3), None)
        );
        assert_eq!(parse_one("ip_rcv@1@2").unwrap(), function("ip_rcv", FunctionMode::Fentry, Some(1), Some(2)));
        assert_eq!(parse_one("tracepoint:skb:kfree_skb").unwrap(), tracepoint(Some("skb"), "kfree_skb", false));
        assert_eq!(parse_one("tp:net:netif_receive_skb").unwrap(), tracepoint(Some("net"), "netif_receive_skb", false));
        assert_eq!(parse_one("tp:kfree_skb").unwrap(), tracepoint(None, "kfree_skb", false));
        assert_eq!(parse_one("raw_tp:net:net_dev_queue").unwrap(), tracepoint(Some("net"), "net_dev_queue", true));
        assert_eq!(parse_one("kprobe:ip_rcv").unwrap(), function("ip_rcv", FunctionMode::Kprobe, None, None));
        assert_eq!(parse_one("fentry:ip_rcv@1").unwrap(), function("ip_rcv", FunctionMode::Fentry, Some(1), None));
        assert_eq!(parse_one("fexit:ip_rcv").unwrap(), function("ip_rcv", FunctionMode::Fexit, None, None));
        assert_eq!(parse_one("kretprobe:ip_rcv").unwrap(), function("ip_rcv", FunctionMode::Kretprobe, None, None));
        assert_eq!(
            parse_one("ip_rcv_core.isra.0").unwrap(),
            function("ip_rcv_core.isra.0", FunctionMode::Fentry, None, None)
        );
    }

    #[test]
    fn patterns_match_like_shell_globs() {
        assert_eq!(parse_one("tcp_v4_*").unwrap().name, "tcp_v4_*");
        assert_eq!(parse_one("kprobe:*").unwrap().name, "*");
        assert!(glob_matches("tcp_v4_*", "tcp_v4_rcv"));
        assert!(glob_matches("tcp_v4_*", "tcp_v4_"));
        assert!(!glob_matches("tcp_v4_*", "tcp_v6_rcv"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("ip?_rcv", "ip6_rcv"));
        assert!(glob_matches("*_rcv*", "ip_rcv_core"));
        assert!(!glob_matches("ip_rcv", "ip_rcv_core"));
    }

    #[test]
    fn parses_the_seed_examples_lists() {
        let list =
            parse_list("tracepoint:net:netif_receive_skb,ip_local_deliver@1,ip_local_deliver_finish@3,icmp_rcv@1")
                .unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["tracepoint:net:netif_receive_skb", "ip_local_deliver@1", "ip_local_deliver_finish@3", "icmp_rcv@1"]
        );
    }

    #[test]
    fn rejects_every_malformed_form_with_a_reason() {
        let err = |s: &str| parse_list(s).unwrap_err();
        assert!(matches!(err(""), SpecError::Empty(_)));
        assert!(matches!(err("ip_rcv,,icmp_rcv"), SpecError::Empty(_)));
        assert!(matches!(err("ip_rcv@0"), SpecError::BadArg { .. }));
        assert!(matches!(err("ip_rcv@13"), SpecError::BadArg { .. }));
        assert!(matches!(err("ip_rcv@x"), SpecError::BadArg { .. }));
        assert!(matches!(err("ip_rcv@"), SpecError::BadArg { .. }));
        assert!(matches!(err("ip_rcv@1@2@3"), SpecError::TooManyArgs(_)));
        assert!(matches!(err("uprobe:ip_rcv"), SpecError::UnknownPrefix { .. }));
        assert!(matches!(err("tracepoint:a:b:c"), SpecError::TracepointShape(_)));
        assert!(matches!(err("tracepoint::kfree_skb"), SpecError::TracepointShape(_)));
        assert!(matches!(err("tracepoint:skb:"), SpecError::MissingName(_)));
        assert!(matches!(err("kprobe:"), SpecError::MissingName(_)));
        assert!(matches!(err("@1"), SpecError::MissingName(_)));
        assert!(matches!(err("ip-rcv"), SpecError::BadName { .. }));
        assert!(matches!(err("kprobe:a:b"), SpecError::BadName { .. }));
        assert!(matches!(err("tp:net:netif_*"), SpecError::BadName { .. }));
        assert!(matches!(err("tcp_v4_*@1"), SpecError::PatternWithArg(_)));
        let message = err("ip_rcv@0").to_string();
        assert!(message.contains("@1 to @12"), "{message}");
    }
}
