//! Go's `printf` verbs a format string commonly uses: `%v %s %d %q %t %f %x
//! %%`, with a width (`%-20s`, `%5d`) and a precision (`%.2f`).

use serde_json::Value;

use super::funcs::display;

pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&f) = chars.peek().filter(|f| **f == '-' || **f == '0') {
            left |= f == '-';
            zero |= f == '0';
            chars.next();
        }
        let width = digits(&mut chars);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(digits(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = verb_text(verb, arg, precision);
        let w = width.unwrap_or(0);
        let pad = w.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
            out.push_str(&text);
        }
    }
    out
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(1000));
        chars.next();
    }
    n
}

fn verb_text(verb: char, arg: &Value, precision: Option<usize>) -> String {
    match verb {
        'q' => serde_json::to_string(&display(arg)).unwrap_or_default(),
        'f' => match arg.as_f64() {
            Some(f) => format!("{f:.p$}", p = precision.unwrap_or(6)),
            None => format!("%!f({})", display(arg)),
        },
        'd' => match arg.as_i64() {
            Some(i) => i.to_string(),
            None => format!("%!d({})", display(arg)),
        },
        'x' => match arg.as_u64() {
            Some(i) => format!("{i:x}"),
            None => display(arg).bytes().map(|b| format!("{b:02x}")).collect(),
        },
        's' | 'v' | 't' => {
            let s = display(arg);
            match precision {
                Some(p) if verb == 's' => s.chars().take(p).collect(),
                _ => s,
            }
        }
        other => format!("%!{other}({})", display(arg)),
    }
}
