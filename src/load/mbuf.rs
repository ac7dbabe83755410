//! Where DPDK's `struct rte_mbuf` keeps the fields netcap reads: given with
//! --mbuf-layout, else the layout of the DPDK releases netcap knows.

use std::fmt;

use anyhow::{Result, bail};

use crate::bpf::types::netcap_mbuf_offsets;
use crate::plan::Target;

/// Byte offsets inside struct rte_mbuf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbufOffsets {
    pub buf_addr: u32,
    pub data_off: u32,
    pub data_len: u32,
    pub pkt_len: u32,
    pub next: u32,
    pub port: u32,
}

/// DPDK 21.11 to 24.11 on 64-bit, built with the IOVA field in the mbuf
/// (the default, and Debian's): buf_addr, buf_iova, then the rearm data
/// (data_off, refcnt, nb_segs, port), ol_flags, the rx descriptor fields
/// (packet_type, pkt_len, data_len, …), and `next` opening the second
/// cache line.
pub const DPDK_DEFAULT: MbufOffsets =
    MbufOffsets { buf_addr: 0, data_off: 16, data_len: 40, pkt_len: 36, next: 64, port: 22 };

impl fmt::Display for MbufOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buf_addr={},data_off={},data_len={},pkt_len={},next={},port={}",
            self.buf_addr, self.data_off, self.data_len, self.pkt_len, self.next, self.port
        )
    }
}

impl MbufOffsets {
    /// `FIELD=OFFSET,...` over the defaults.
    pub fn parse(text: &str) -> Result<MbufOffsets> {
        let mut offsets = DPDK_DEFAULT;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((field, value)) = part.split_once('=') else {
                bail!("--mbuf-layout: '{part}' is not FIELD=OFFSET (e.g. next=64)");
            };
            let Ok(value) = value
                .trim()
                .parse::<u32>()
                .or_else(|_| u32::from_str_radix(value.trim().trim_start_matches("0x"), 16).map_err(|_| ()))
            else {
                bail!("--mbuf-layout: '{value}' is not a byte offset");
            };
            if value > 1024 {
                bail!("--mbuf-layout: {field}={value} lies past struct rte_mbuf (a few hundred bytes)");
            }
            let slot = match field.trim() {
                "buf_addr" => &mut offsets.buf_addr,
                "data_off" => &mut offsets.data_off,
                "data_len" => &mut offsets.data_len,
                "pkt_len" => &mut offsets.pkt_len,
                "next" => &mut offsets.next,
                "port" => &mut offsets.port,
                other => {
                    bail!("--mbuf-layout: unknown field '{other}' (buf_addr, data_off, data_len, pkt_len, next, port)")
                }
            };
            *slot = value;
        }
        Ok(offsets)
    }

    pub fn to_config(self) -> netcap_mbuf_offsets {
        netcap_mbuf_offsets {
            buf_addr: self.buf_addr,
            data_off: self.data_off,
            data_len: self.data_len,
            pkt_len: self.pkt_len,
            next: self.next,
            port: self.port,
        }
    }
}

/// The layout to use: --mbuf-layout, else DPDK's default.
pub fn offsets(layout: Option<&str>, _targets: &[Target]) -> Result<MbufOffsets> {
    match layout {
        Some(text) => MbufOffsets::parse(text),
        None => Ok(DPDK_DEFAULT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_over_the_default_layout() {
        let offsets = MbufOffsets::parse("next=8, pkt_len=0x24").unwrap();
        assert_eq!(offsets, MbufOffsets { next: 8, pkt_len: 36, ..DPDK_DEFAULT });
        assert_eq!(MbufOffsets::parse(&DPDK_DEFAULT.to_string()).unwrap(), DPDK_DEFAULT);
        assert!(MbufOffsets::parse("nxt=8").unwrap_err().to_string().contains("unknown field 'nxt'"));
        assert!(MbufOffsets::parse("next").is_err());
        assert!(MbufOffsets::parse("next=99999").is_err());
    }
}
