//! What KOOMPI reads from a Syncthing home's `config.xml`: the REST API key, the GUI
//! address and the devices listed at the top level (right after `syncthing generate`, only
//! this device). A small read of a few elements, the same in Syncthing 1.19 and 2.x. Every
//! change to a running Syncthing's config goes through the REST API; the one edit of the
//! file is [`lan_only`], on a config `syncthing generate` just wrote, before the first
//! start, so that not even that start announces anything outside the LAN.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Errors reading `config.xml`.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not Syncthing's config XML: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path} has no {what}")]
    Missing { path: String, what: &'static str },
}

/// The parts of `config.xml` KOOMPI needs.
#[derive(Clone, PartialEq, Eq)]
pub struct HomeConfig {
    /// `<gui><apikey>`: the secret every REST call carries in `X-API-Key`.
    pub api_key: String,
    /// `<gui><address>`, e.g. `127.0.0.1:8384`.
    pub gui_address: String,
    /// The `id` of each `<device>` directly under `<configuration>`, in file order.
    pub devices: Vec<String>,
}

impl std::fmt::Debug for HomeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeConfig")
            .field("api_key", &"***")
            .field("gui_address", &self.gui_address)
            .field("devices", &self.devices)
            .finish()
    }
}

impl HomeConfig {
    /// The device ID of a freshly generated home: its only device.
    pub fn own_device_id(&self) -> Option<&str> {
        match self.devices.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }
}

/// Reads `config.xml` at `path`.
pub fn read_home_config(path: &std::path::Path) -> Result<HomeConfig, HomeError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HomeError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_home_config(&text, &shown)
}

/// Parses the text of a `config.xml`; `path` names it in errors.
pub fn parse_home_config(text: &str, path: &str) -> Result<HomeConfig, HomeError> {
    let parse_err = |reason: String| HomeError::Parse {
        path: path.to_string(),
        reason,
    };
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut api_key: Option<String> = None;
    let mut gui_address: Option<String> = None;
    let mut devices = Vec::new();
    let mut saw_root = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| parse_err(format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if stack.is_empty() {
                    if name != "configuration" {
                        return Err(parse_err(format!("the root element is <{name}>")));
                    }
                    saw_root = true;
                }
                if name == "device" && stack.len() == 1 {
                    for attr in e.attributes() {
                        let attr = attr.map_err(|e| parse_err(e.to_string()))?;
                        if attr.key.as_ref() == b"id" {
                            let v = attr
                                .unescape_value()
                                .map_err(|e| parse_err(e.to_string()))?;
                            devices.push(v.into_owned());
                        }
                    }
                }
                if matches!(ev, Event::Start(_)) {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                let at = stack.iter().map(String::as_str).collect::<Vec<_>>();
                let slot = match at.as_slice() {
                    ["configuration", "gui", "apikey"] => &mut api_key,
                    ["configuration", "gui", "address"] => &mut gui_address,
                    _ => continue,
                };
                let v = t.unescape().map_err(|e| parse_err(e.to_string()))?;
                *slot = Some(v.trim().to_string());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let missing = |what| HomeError::Missing {
        path: path.to_string(),
        what,
    };
    if !saw_root {
        return Err(missing("<configuration> element"));
    }
    Ok(HomeConfig {
        api_key: api_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("GUI API key (<gui><apikey>)"))?,
        gui_address: gui_address
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("GUI address (<gui><address>)"))?,
        devices,
    })
}

/// The options a fresh config gets before Syncthing's first start: the classroom's LAN-only
/// settings of [`super::classroom::apply_class_options`] (which the first class applies
/// again through the REST API), as the text of the elements in `<options>`.
const LAN_ONLY: [(&str, &str); 9] = [
    ("globalAnnounceEnabled", "false"),
    ("relaysEnabled", "false"),
    ("natEnabled", "false"),
    ("localAnnounceEnabled", "true"),
    ("urAccepted", "-1"),
    ("crashReportingEnabled", "false"),
    ("autoUpgradeIntervalH", "0"),
    ("startBrowser", "false"),
    ("limitBandwidthInLan", "true"),
];

/// `xml` (a `config.xml`) with the LAN-only options set: the text of those elements
/// directly under `<configuration><options>` replaced, everything else copied as it is.
/// An option the file does not have is not added.
pub fn lan_only(xml: &str) -> Result<String, String> {
    use quick_xml::events::BytesText;
    use quick_xml::Writer;
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::new());
    let mut path: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        let event = match event {
            Event::Eof => break,
            Event::Start(ref e) => {
                path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                event
            }
            Event::End(_) => {
                path.pop();
                event
            }
            Event::Text(_) => {
                let replaced = match path.as_slice() {
                    [c, o, name] if c == "configuration" && o == "options" => LAN_ONLY
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| Event::Text(BytesText::new(v))),
                    _ => None,
                };
                replaced.unwrap_or(event)
            }
            other => other,
        };
        writer.write_event(event).map_err(|e| e.to_string())?;
    }
    String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape `syncthing generate` writes (1.19), cut down.
    const GENERATED: &str = r#"<configuration version="36">
    <folder id="x" label="x" path="/tmp/x" type="sendreceive">
        <device id="NESTED-NOT-OURS" introducedBy=""></device>
    </folder>
    <device id="AAAAAAA-BBBBBBB" name="vm" compression="metadata">
        <address>dynamic</address>
    </device>
    <gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:8384</address>
        <apikey>tp6uDZmf&amp;Rq</apikey>
    </gui>
    <defaults><device id="" compression="metadata"></device></defaults>
</configuration>"#;

    #[test]
    fn reads_key_address_and_top_level_devices_only() {
        let c = parse_home_config(GENERATED, "config.xml").expect("parses");
        assert_eq!(c.api_key, "tp6uDZmf&Rq");
        assert_eq!(c.gui_address, "127.0.0.1:8384");
        assert_eq!(c.devices, vec!["AAAAAAA-BBBBBBB".to_string()]);
        assert_eq!(c.own_device_id(), Some("AAAAAAA-BBBBBBB"));
        assert!(
            !format!("{c:?}").contains("tp6u"),
            "the key stays out of Debug"
        );
    }

    #[test]
    fn a_missing_key_is_an_error() {
        let text = GENERATED.replace("<apikey>tp6uDZmf&amp;Rq</apikey>", "");
        let e = parse_home_config(&text, "c.xml").expect_err("no key");
        assert_eq!(e.to_string(), "c.xml has no GUI API key (<gui><apikey>)");
    }

    #[test]
    fn other_xml_is_refused() {
        assert!(parse_home_config("<html></html>", "c.xml").is_err());
        assert!(parse_home_config("", "c.xml").is_err());
        assert!(parse_home_config("<configuration><gui>", "c.xml").is_err());
    }

    /// The options part of what 1.19.2's `syncthing generate` writes.
    const FRESH: &str = "<configuration version=\"36\">\n    <device id=\"X\" name=\"h\"></device>\n    <gui enabled=\"true\" tls=\"false\">\n        <address>127.0.0.1:8384</address>\n    </gui>\n    <options>\n        <listenAddress>default</listenAddress>\n        <globalAnnounceEnabled>true</globalAnnounceEnabled>\n        <localAnnounceEnabled>true</localAnnounceEnabled>\n        <relaysEnabled>true</relaysEnabled>\n        <startBrowser>true</startBrowser>\n        <natEnabled>true</natEnabled>\n        <urAccepted>0</urAccepted>\n        <autoUpgradeIntervalH>12</autoUpgradeIntervalH>\n        <limitBandwidthInLan>false</limitBandwidthInLan>\n        <crashReportingEnabled>true</crashReportingEnabled>\n    </options>\n    <defaults><folder><globalAnnounceEnabled>true</globalAnnounceEnabled></folder></defaults>\n</configuration>\n";

    #[test]
    fn a_fresh_config_is_made_lan_only_and_nothing_else_changes() {
        let out = lan_only(FRESH).expect("rewrite");
        for (k, v) in LAN_ONLY {
            if FRESH.contains(&format!("<{k}>")) {
                assert!(out.contains(&format!("    <{k}>{v}</{k}>")), "{k}: {out}");
            }
        }
        // Outside <options> nothing moves; the layout is kept line for line.
        assert!(out.contains("<folder><globalAnnounceEnabled>true</globalAnnounceEnabled>"));
        assert!(out.contains("<listenAddress>default</listenAddress>"));
        assert_eq!(out.lines().count(), FRESH.lines().count());
        assert_eq!(lan_only(&out).expect("again"), out);
        assert!(lan_only("<configuration><options>").is_err() || lan_only("<a></b>").is_err());
    }
}
