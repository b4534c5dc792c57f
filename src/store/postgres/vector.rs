//! pgvector's `vector` type for sqlx 0.9.
//!
//! The `pgvector` crate's sqlx support is built against sqlx 0.8, whose traits are not 0.9's,
//! so ragd speaks the (small, stable) binary format itself: a big-endian u16 dimension, a u16
//! reserved for flags, then the values as big-endian f32.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A vector bound to, or read from, a pgvector `vector` column.
#[derive(Debug, Clone, PartialEq)]
pub struct PgVector(pub Vec<f32>);

impl Type<Postgres> for PgVector {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("vector")
    }
}

impl Encode<'_, Postgres> for PgVector {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend(u16::try_from(self.0.len())?.to_be_bytes());
        buf.extend(0_u16.to_be_bytes());
        for value in &self.0 {
            buf.extend(value.to_be_bytes());
        }
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for PgVector {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let bytes = <&[u8] as Decode<Postgres>>::decode(value)?;
        let (header, values) = bytes
            .split_at_checked(4)
            .ok_or("vector value shorter than its header")?;
        let dimension = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if values.len() != dimension * 4 {
            return Err(format!(
                "vector of dimension {dimension} carries {} bytes",
                values.len()
            )
            .into());
        }
        Ok(Self(
            values
                .chunks_exact(4)
                .map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ))
    }
}
