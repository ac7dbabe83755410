//! The --skb-filter language: C-like comparisons of sk_buff fields.
//!
//! ```text
//! expr    = and { "||" and }
//! and     = not { "&&" not }
//! not     = "!" not | compare
//! compare = bits [ ("==" | "!=" | "<" | "<=" | ">" | ">=") bits ]
//! bits    = shift { ("&" | "|" | "^") shift }
//! shift   = atom { ("<<" | ">>") atom }
//! atom    = number | field | "(" expr ")"
//! field   = name { ("." | "->") name | "[" number "]" }   (an optional leading "skb->")
//! ```
//!
//! Unlike C, `&`, `|` and `^` bind tighter than comparisons, so that
//! `mark & 0xff == 0x10` means what it reads as.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` (`arrow`: false) or `->name` (true); the first name has neither.
    Member {
        name: String,
        arrow: bool,
    },
    Index(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// As written, for messages and output labels.
    pub text: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LogicalAnd,
    LogicalOr,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Number(u64),
    Field(FieldPath),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("--skb-filter '{text}': {what} at column {column}{}", if *.at_end { " (the end)" } else { "" })]
pub struct ParseError {
    pub text: String,
    pub what: String,
    /// 1-based.
    pub column: usize,
    pub at_end: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    Number(u64),
    Symbol(&'static str),
}

/// Longest first, so that "<=" is not read as "<".
const SYMBOLS: [&str; 20] =
    ["->", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", ".", "[", "]", "(", ")", "!", "<", ">", "&", "|", "^"];

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
}

pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser { text, tokens: lex(text)?, at: 0 };
    if parser.tokens.is_empty() {
        return Err(parser.error("an empty expression: write e.g. 'len > 1000 && mark == 0x10'"));
    }
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("expected '&&', '||', a comparison or the end"));
    }
    Ok(expr)
}

fn lex(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    let error = |what: String, at: usize| ParseError { text: text.into(), what, column: at + 1, at_end: false };
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = at;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            tokens.push((Token::Name(text[start..at].to_string()), start));
        } else if c.is_ascii_digit() {
            let start = at;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let word = &text[start..at];
            let value = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => word.parse(),
            };
            let value =
                value.map_err(|_| error(format!("'{word}' is not a number (decimal or 0x hex, 64 bits)"), start))?;
            tokens.push((Token::Number(value), start));
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| text[at..].starts_with(**s)) {
            tokens.push((Token::Symbol(symbol), at));
            at += symbol.len();
        } else {
            let ch = text[at..].chars().next().unwrap_or('?');
            return Err(error(
                format!(
                    "'{ch}' is not part of the language (fields, numbers, == != < <= > >= & | ^ << >> ! && || ( ))"
                ),
                at,
            ));
        }
    }
    Ok(tokens)
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ParseError {
        let (column, at_end) = match self.tokens.get(self.at) {
            Some((_, at)) => (at + 1, false),
            None => (self.text.len() + 1, true),
        };
        ParseError { text: self.text.into(), what: what.into(), column, at_end }
    }

    fn peek_symbol(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some((Token::Symbol(s), _)) => Some(s),
            _ => None,
        }
    }

    fn eat(&mut self, symbol: &str) -> bool {
        if self.peek_symbol() == Some(symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Binary(BinOp::LogicalOr, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while self.eat("&&") {
            left = Expr::Binary(BinOp::LogicalAnd, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let left = self.bits()?;
        let op = match self.peek_symbol() {
            Some("==") => BinOp::Eq,
            Some("!=") => BinOp::Ne,
            Some("<") => BinOp::Lt,
            Some("<=") => BinOp::Le,
            Some(">") => BinOp::Gt,
            Some(">=") => BinOp::Ge,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.bits()?;
        if matches!(self.peek_symbol(), Some("==" | "!=" | "<" | "<=" | ">" | ">=")) {
            return Err(self.error("comparisons do not chain: join them with && or ||"));
        }
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn bits(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.shift()?;
        loop {
            let op = match self.peek_symbol() {
                Some("&") => BinOp::And,
                Some("|") => BinOp::Or,
                Some("^") => BinOp::Xor,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.shift()?));
        }
    }

    fn shift(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.atom()?;
        loop {
            let op = match self.peek_symbol() {
                Some("<<") => BinOp::Shl,
                Some(">>") => BinOp::Shr,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.atom()?));
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        match self.tokens.get(self.at).cloned() {
            Some((Token::Number(n), _)) => {
                self.at += 1;
                Ok(Expr::Number(n))
            }
            Some((Token::Name(_), start)) => self.field(start).map(Expr::Field),
            Some((Token::Symbol("("), _)) => {
                self.at += 1;
                let inner = self.or()?;
                if !self.eat(")") {
                    return Err(self.error("expected ')'"));
                }
                Ok(inner)
            }
            _ => Err(self.error("expected a field, a number or '('")),
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.tokens.get(self.at).cloned() {
            Some((Token::Name(name), _)) => {
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.error("expected a field name")),
        }
    }

    fn field(&mut self, start: usize) -> Result<FieldPath, ParseError> {
        let mut steps = vec![Step::Member { name: self.name()?, arrow: false }];
        // `skb->mark` is `mark`: the root is the skb itself.
        if steps[0] == (Step::Member { name: "skb".into(), arrow: false }) && self.peek_symbol() == Some("->") {
            self.at += 1;
            steps = vec![Step::Member { name: self.name()?, arrow: false }];
        }
        loop {
            if self.eat(".") {
                steps.push(Step::Member { name: self.name()?, arrow: false });
            } else if self.eat("->") {
                steps.push(Step::Member { name: self.name()?, arrow: true });
            } else if self.eat("[") {
                let index = match self.tokens.get(self.at) {
                    Some((Token::Number(n), _)) if *n <= u64::from(u32::MAX) => *n as u32,
                    _ => return Err(self.error("expected a constant index")),
                };
                self.at += 1;
                if !self.eat("]") {
                    return Err(self.error("expected ']'"));
                }
                steps.push(Step::Index(index));
            } else {
                break;
            }
        }
        let end = self.tokens.get(self.at).map_or(self.text.len(), |(_, at)| *at);
        Ok(FieldPath { text: self.text[start..end].trim_end().to_string(), steps })
    }
}

/// Field paths, parsed alone (--skb-fields: a comma-separated list).
pub fn parse_field_list(text: &str) -> Result<Vec<FieldPath>, ParseError> {
    let mut paths = Vec::new();
    for part in text.split(',') {
        let part_text = part.trim();
        let mut parser = Parser { text: part_text, tokens: lex(part_text)?, at: 0 };
        let Some((Token::Name(_), start)) = parser.tokens.first().cloned() else {
            return Err(ParseError {
                text: text.into(),
                what: format!("'{part_text}' is not a field name"),
                column: 1,
                at_end: part_text.is_empty(),
            });
        };
        let path = parser.field(start)?;
        if parser.at < parser.tokens.len() {
            return Err(parser.error("expected ',' or the end after a field"));
        }
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> Expr {
        let steps =
            text.split("->").enumerate().map(|(i, name)| Step::Member { name: name.into(), arrow: i > 0 }).collect();
        Expr::Field(FieldPath { text: text.into(), steps })
    }

    fn binary(op: BinOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary(op, Box::new(left), Box::new(right))
    }

    #[test]
    fn masks_bind_tighter_than_comparisons_and_and_tighter_than_or() {
        let parsed = parse("mark & 0xff == 0x10 || len > 1000 && dev->mtu == 9000").unwrap();
        let expected = binary(
            BinOp::LogicalOr,
            binary(BinOp::Eq, binary(BinOp::And, field("mark"), Expr::Number(0xff)), Expr::Number(0x10)),
            binary(
                BinOp::LogicalAnd,
                binary(BinOp::Gt, field("len"), Expr::Number(1000)),
                binary(BinOp::Eq, field("dev->mtu"), Expr::Number(9000)),
            ),
        );
        assert_eq!(parsed, expected);
    }

    #[test]
    fn paths_take_dots_arrows_indexes_and_an_optional_skb() {
        let Expr::Field(path) = parse("skb->cb[3]").unwrap() else { panic!() };
        assert_eq!(path.steps, [Step::Member { name: "cb".into(), arrow: false }, Step::Index(3)]);
        let Expr::Field(path) = parse("sk->__sk_common.skc_family").unwrap() else { panic!() };
        assert_eq!(path.text, "sk->__sk_common.skc_family");
        assert_eq!(path.steps.len(), 3);
        assert_eq!(
            parse("!(len < 60)").unwrap(),
            Expr::Not(Box::new(binary(BinOp::Lt, field("len"), Expr::Number(60))))
        );
    }

    #[test]
    fn every_mistake_says_what_and_where() {
        let cases = [
            ("", "an empty expression: write e.g. 'len > 1000 && mark == 0x10' at column 1 (the end)"),
            ("len >", "expected a field, a number or '(' at column 6 (the end)"),
            ("len > 10 20", "expected '&&', '||', a comparison or the end at column 10"),
            ("(len > 10", "expected ')' at column 10 (the end)"),
            ("len $ 1", "'$' is not part of the language"),
            ("len > 0xzz", "'0xzz' is not a number (decimal or 0x hex, 64 bits) at column 7"),
            ("1 < len < 9", "comparisons do not chain: join them with && or || at column 9"),
            ("cb[x]", "expected a constant index at column 4"),
            ("dev->", "expected a field name at column 6 (the end)"),
        ];
        for (text, message) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.starts_with(&format!("--skb-filter '{text}': ")), "{error}");
            assert!(error.contains(message), "'{text}': {error}");
        }
    }

    #[test]
    fn field_lists_split_on_commas() {
        let paths = parse_field_list("mark, dev->mtu,cb[0]").unwrap();
        assert_eq!(paths.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["mark", "dev->mtu", "cb[0]"]);
        assert!(parse_field_list("mark,,len").is_err());
        assert!(
            parse_field_list("mark == 1").unwrap_err().to_string().contains("expected ',' or the end after a field")
        );
    }
}
