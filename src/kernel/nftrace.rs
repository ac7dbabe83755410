//! nftables rule tracing for `--nft`: nf_tables reports the rule that gave
//! each verdict (nft_trace_notify) only for packets whose skb->nf_trace is
//! set, and only once some rule sets it (the nft_trace_enabled static key).
//! netcap adds a table of its own, `netcap_trace_PID`, in each network
//! namespace it traces, whose chains at prerouting and output (the first
//! thing there, priority INT_MIN) do `meta nftrace set 1` and nothing else.
//! The table is created with NFT_TABLE_F_OWNER over a netlink socket netcap
//! keeps open: the kernel deletes it when the socket closes, so it cannot
//! outlive netcap, even killed with SIGKILL. Veth crossings reset nf_trace
//! (skb_scrub_packet), hence one table per namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};

/// The prefix of netcap's tables: the BPF side skips chains of tables named so.
pub const TABLE_PREFIX: &str = "netcap_trace_";

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_INET: u8 = 1;
const NFT_TABLE_F_OWNER: u32 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;
/// enum nf_inet_hooks: where packets start (received, locally sent).
const HOOKS: [(&str, u32); 2] = [("prerouting", 0), ("output", 3)];
/// NFT_REG_1 and NFT_META_NFTRACE of nf_tables.h.
const REGISTER: u32 = 1;
const META_NFTRACE: u32 = 12;

/// The tables netcap keeps while it runs; dropping it deletes them.
pub struct RuleTracing {
    sockets: Vec<OwnedFd>,
    pub table: String,
}

impl RuleTracing {
    /// Adds netcap's table in this thread's network namespace, and then in
    /// each of `others` (entered for the socket only).
    pub fn start(others: &[crate::kernel::netns::Netns]) -> Result<RuleTracing> {
        let table = format!("{TABLE_PREFIX}{}", std::process::id());
        let mut sockets = vec![add_table(&table).context("in netcap's own network namespace")?];
        for netns in others {
            let label = netns.label();
            let socket = netns
                .enter(|| add_table(&table))
                .map_err(|why| anyhow::anyhow!("entering it: {why}"))
                .and_then(|added| added)
                .with_context(|| format!("in network namespace {label}"))?;
            sockets.push(socket);
        }
        Ok(RuleTracing { sockets, table })
    }

    /// What netcap added, for the line at start.
    pub fn summary(&self) -> String {
        let hooks: Vec<&str> = HOOKS.iter().map(|(hook, _)| *hook).collect();
        format!(
            "table inet {} marks packets with nftrace at {} (priority {}) in {} namespace(s)",
            self.table,
            hooks.join(" and "),
            i32::MIN,
            self.sockets.len()
        )
    }
}

/// One nfnetlink message: header, nfgenmsg, then attributes.
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, family: u8, seq: u32) -> Message {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        bytes.push(family);
        bytes.push(0); // NFNETLINK_V0
        bytes.extend_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
        Message { bytes }
    }

    fn attribute(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(&(4 + payload.len() as u16).to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(payload);
        self.pad();
        self
    }

    fn string(&mut self, kind: u16, text: &str) -> &mut Self {
        let mut payload = text.as_bytes().to_vec();
        payload.push(0);
        self.attribute(kind, &payload)
    }

    fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attribute(kind, &value.to_be_bytes())
    }

    /// A nested attribute whose contents `fill` adds.
    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 2]);
        self.bytes.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        fill(self);
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

/// The batch that makes the table, its chains and their one rule each, and
/// what each acknowledged message makes (message `seq` is at `seq - 1`).
fn batch(table: &str) -> (Vec<u8>, Vec<String>) {
    const REQUEST: u16 = libc::NLM_F_REQUEST as u16;
    const ACK: u16 = libc::NLM_F_ACK as u16;
    const CREATE: u16 = libc::NLM_F_CREATE as u16;
    const APPEND: u16 = libc::NLM_F_APPEND as u16;
    let subsystem = |message: u16| NFNL_SUBSYS_NFTABLES << 8 | message;
    let mut bytes = Message::new(NFNL_MSG_BATCH_BEGIN, REQUEST, 0, 0).finish();
    let mut made = Vec::new();
    let mut add = |message: Message, what: String, bytes: &mut Vec<u8>| {
        bytes.extend(message.finish());
        made.push(what);
    };
    let mut seq = 1;
    let mut new_table = Message::new(subsystem(NFT_MSG_NEWTABLE), REQUEST | ACK | CREATE, NFPROTO_INET, seq);
    new_table.string(1, table).be32(2, NFT_TABLE_F_OWNER); // NFTA_TABLE_NAME, _FLAGS
    add(new_table, "the table".into(), &mut bytes);
    for (hook, number) in HOOKS {
        seq += 1;
        let mut chain = Message::new(subsystem(NFT_MSG_NEWCHAIN), REQUEST | ACK | CREATE, NFPROTO_INET, seq);
        chain
            .string(1, table) // NFTA_CHAIN_TABLE
            .string(3, hook) // NFTA_CHAIN_NAME
            .nest(4, |hook| {
                // NFTA_CHAIN_HOOK: NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY
                hook.be32(1, number).be32(2, i32::MIN as u32); // first at the hook
            })
            .be32(5, 1) // NFTA_CHAIN_POLICY: NF_ACCEPT
            .string(7, "filter"); // NFTA_CHAIN_TYPE
        add(chain, format!("chain {hook}"), &mut bytes);
        seq += 1;
        let mut rule = Message::new(subsystem(NFT_MSG_NEWRULE), REQUEST | ACK | CREATE | APPEND, NFPROTO_INET, seq);
        rule.string(1, table).string(2, hook).nest(4, |list| {
            // NFTA_RULE_EXPRESSIONS: immediate 1 into the register, then meta nftrace set from it.
            list.nest(1, |immediate| {
                immediate.string(1, "immediate").nest(2, |data| {
                    data.be32(1, REGISTER).nest(2, |value| {
                        value.attribute(1, &[1]); // NFTA_DATA_VALUE
                    });
                });
            });
            list.nest(1, |meta| {
                meta.string(1, "meta").nest(2, |data| {
                    data.be32(2, META_NFTRACE).be32(3, REGISTER); // NFTA_META_KEY, _SREG
                });
            });
        });
        add(rule, format!("chain {hook}'s rule meta nftrace set 1"), &mut bytes);
    }
    bytes.extend(Message::new(NFNL_MSG_BATCH_END, REQUEST, 0, seq + 1).finish());
    (bytes, made)
}

/// Sends the batch on a new socket of this thread's namespace and waits
/// for every acknowledgement; the socket keeps the table alive.
fn add_table(table: &str) -> Result<OwnedFd> {
    // SAFETY: plain socket creation; the descriptor is owned from here on.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_NETFILTER) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("opening a netfilter netlink socket");
    }
    // SAFETY: raw is a new descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout = libc::timeval { tv_sec: 5, tv_usec: 0 };
    // SAFETY: the option's value is a timeval of the size given.
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    let (bytes, made) = batch(table);
    let mut acks = made.len();
    // SAFETY: sockaddr_nl is plain data; pid 0 and no groups address the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: bytes and kernel live across the call, with the sizes given.
    let sent = unsafe {
        libc::sendto(
            raw,
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error()).context("sending the nftables batch");
    }
    let mut buffer = vec![0u8; 8192];
    while acks > 0 {
        // SAFETY: the buffer is writable for its length.
        let got = unsafe { libc::recv(socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        if got < 0 {
            return Err(std::io::Error::last_os_error()).context("waiting for nf_tables' answer");
        }
        let mut at = 0;
        let got = got as usize;
        while at + 20 <= got {
            let len = u32::from_ne_bytes(buffer[at..at + 4].try_into()?) as usize;
            let kind = u16::from_ne_bytes(buffer[at + 4..at + 6].try_into()?);
            if kind == NLMSG_ERROR {
                let error = i32::from_ne_bytes(buffer[at + 16..at + 20].try_into()?);
                if error != 0 {
                    let why = std::io::Error::from_raw_os_error(-error);
                    // The refused message's header follows the errno.
                    let seq =
                        buffer.get(at + 28..at + 32).map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
                    let what = (seq as usize).checked_sub(1).and_then(|i| made.get(i)).map_or("?", String::as_str);
                    bail!("nf_tables refused netcap's table {table} ({what}): {why}");
                }
                acks -= 1;
            }
            if len < 16 {
                break;
            }
            at += len.div_ceil(4) * 4;
        }
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_framed_as_netlink_wants() {
        let (bytes, made) = batch("netcap_trace_1");
        // A table, and a chain and a rule for each hook.
        assert_eq!(made.len(), 5);
        assert_eq!(made[2], "chain prerouting's rule meta nftrace set 1");
        // Messages follow one another by their own lengths, each 4-aligned,
        // from the batch's beginning to its end.
        let mut kinds = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            kinds.push(u16::from_ne_bytes(bytes[at + 4..at + 6].try_into().unwrap()));
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds, [0x10, 0xa00, 0xa03, 0xa06, 0xa03, 0xa06, 0x11]);
    }
}

/// Root only: a namespace of its own, nft (the oracle) lists what netcap added.
#[cfg(test)]
mod in_the_kernel {
    use super::*;
    use std::process::Command;

    fn nft(netns: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", netns, "nft"]).args(args).output().expect("running nft")
    }

    #[test]
    fn the_table_sets_nftrace_first_and_goes_with_its_socket() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("needs root (CI runs it as root)");
            return;
        }
        let name = format!("netcap-ut-{}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            }
        }
        let _gone = Gone(name.clone());
        let netns = crate::kernel::netns::resolve(&name).unwrap().unwrap();
        let table = "netcap_trace_ut";
        let socket = netns.enter(|| add_table(table)).unwrap().unwrap();
        let listed = nft(&name, &["list", "table", "inet", table]);
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
        for hook in ["prerouting", "output"] {
            assert!(
                text.contains(&format!("chain {hook} {{\n\t\ttype filter hook {hook} priority -2147483648; policy accept;\n\t\tmeta nftrace set 1\n")),
                "{text}"
            );
        }
        assert!(text.contains("flags owner"), "{text}");
        // A second netcap cannot take it over, and nothing else can change it.
        assert!(netns.enter(|| add_table(table)).unwrap().is_err());
        drop(socket);
        // The kernel removes an owned table once its socket is released.
        let mut gone = false;
        for _ in 0..50 {
            if !nft(&name, &["list", "table", "inet", table]).status.success() {
                gone = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(gone, "the table outlived its socket");
    }
}
