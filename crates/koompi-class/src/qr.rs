//! The join code as a QR code in the terminal, for a phone or a laptop camera.
//!
//! Unicode half blocks (`▀ ▄ █`, two modules per character cell) with a 4-module quiet zone;
//! drawn for a dark terminal (light modules are the blocks). A code's payload (`KOOMPI
//! CLASS:` and its words, uppercase so QR's alphanumeric mode packs it) makes a version-3
//! symbol: 37 columns by 19 lines, well inside 80 columns. [`render`] refuses anything wider
//! than [`MAX_COLUMNS`] instead of drawing a code that wraps and cannot be scanned.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use crate::code::JoinCode;

/// The widest drawing [`render`] returns: a classic terminal's width.
pub const MAX_COLUMNS: usize = 80;

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("the QR code would be {0} columns wide, more than a {MAX_COLUMNS}-column terminal")]
    TooWide(usize),
}

/// What a join code's QR code holds: `KOOMPI CLASS:BAMBOO-LEMON-MANGO-RIVER-OWL`.
pub fn payload(code: &JoinCode) -> String {
    format!("KOOMPI CLASS:{}", code.words().to_uppercase())
}

/// `text` as a QR code (error correction M) in Unicode half blocks, one `\n`-ended line per
/// two module rows, at most [`MAX_COLUMNS`] wide.
pub fn render(text: &str) -> Result<String, QrError> {
    let qr = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    let drawing = qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    let width = drawing
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    if width > MAX_COLUMNS {
        return Err(QrError::TooWide(width));
    }
    Ok(drawing + "\n")
}

/// The join code's QR code ([`payload`] drawn by [`render`]).
pub fn render_code(code: &JoinCode) -> Result<String, QrError> {
    render(&payload(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns the drawing back into modules (true = dark module, i.e. a space in this
    /// inverted drawing) and decodes it with rqrr.
    fn decode(drawing: &str) -> Result<String, String> {
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in drawing.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                // Light modules are drawn: '█' both light, '▀' top light, '▄' bottom light.
                let (t, b) = match c {
                    '█' => (false, false),
                    '▀' => (false, true),
                    '▄' => (true, false),
                    ' ' => (true, true),
                    other => return Err(format!("unexpected {other:?}")),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        let scale = 4;
        let h = rows.len();
        let w = rows.first().map(Vec::len).unwrap_or(0);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
            if rows[y / scale][x / scale] {
                0
            } else {
                255
            }
        });
        let grids = img.detect_grids();
        let grid = grids.first().ok_or("no QR code found")?;
        let (_, text) = grid.decode().map_err(|e| e.to_string())?;
        Ok(text)
    }

    #[test]
    fn a_code_fits_80_columns_and_scans() -> Result<(), String> {
        // The longest words make the longest payload.
        let code = JoinCode::parse("avocado avocado avocado avocado avocado")
            .map_err(|e| e.to_string())?;
        let drawing = render_code(&code).map_err(|e| e.to_string())?;
        let width = drawing
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        assert!(width <= MAX_COLUMNS, "{width} columns");
        assert!(
            drawing.lines().count() <= 25,
            "{} lines",
            drawing.lines().count()
        );
        assert_eq!(decode(&drawing)?, payload(&code));
        Ok(())
    }

    #[test]
    fn too_much_text_is_refused() {
        let long = "X".repeat(1000);
        assert!(matches!(render(&long), Err(QrError::TooWide(_))));
    }

    /// What a phone reads from the QR code, pasted whole, is a code `join` accepts.
    #[test]
    fn the_qr_text_pasted_whole_is_the_code() {
        let code = JoinCode::from_value(123_456_789_012).expect("code");
        let text = payload(&code);
        assert_eq!(JoinCode::parse(&text).ok(), Some(code));
        assert_eq!(JoinCode::parse(&text.to_lowercase()).ok(), Some(code));
        assert!(JoinCode::parse("KOOMPI CLASS:").is_err());
    }
}
