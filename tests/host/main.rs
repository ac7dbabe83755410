//! Host integration tier: the real netcap binary on this machine's kernel,
//! real traffic between network namespaces. Root only; CI is root.

mod ct;
mod decoder;
mod drop;
mod ext;
mod filter;
mod gather;
mod output;
mod progs;
mod read;
mod release;
mod robust;
mod scope;
mod skb;
mod track;
mod user;
mod util;
