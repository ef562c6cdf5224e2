//! Distinct counts kept exactly: products with a passed curation, IKM businesses with such a
//! product, outlets stocking products, products listed in a partner's outlets.
//!
//! A distinct count cannot be added up from deltas: it changes only when a member's own count
//! goes from 0 to 1 or back. So each member has a row in `summary_members` (its count, per
//! partner and for any partner, scope 0), updated in place by the write: its row lock is the
//! member's own (one product, one business, one outlet), never a hot row, and a write takes its
//! member rows in key order, so two writes cannot wait for each other in a cycle. When a count
//! crosses zero the write appends a delta to the distinct figure in `summary_counts`.
//!
//! What the figures depend on is read `FOR SHARE` on PostgreSQL (a product's business, that
//! business's IKM flag): a concurrent move of the product or change of the KBLI then waits for
//! this write or this write for it, and each sees the other's result. Business before product,
//! always ([`lock_product`]).

use diesel::Connection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{Deltas, Figure};
use crate::db::DbConnection;

/// A kind of member row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Member {
    /// A product with passed curations (scope: the partner, 0 any); its passed curations.
    PassedProduct,
    /// A business with passed products (scope: the partner, 0 any); their passed curations.
    /// Counted among the curated IKM businesses while the business is IKM.
    CuratedBusiness,
    /// An outlet stocking products (scope: its partner, 0 any); its active placements.
    StockingOutlet,
    /// A product listed in a partner's outlets (scope: the partner); its active placements.
    ListedProduct,
}

impl Member {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Member::PassedProduct => "passed_product",
            Member::CuratedBusiness => "curated_business",
            Member::StockingOutlet => "stocking_outlet",
            Member::ListedProduct => "listed_product",
        }
    }

    /// The distinct figure the members of this kind make up.
    fn figure(self) -> Figure {
        match self {
            Member::PassedProduct => Figure::CuratedPassed,
            Member::CuratedBusiness => Figure::CuratedIkmBusinesses,
            Member::StockingOutlet => Figure::StockingOutlets,
            Member::ListedProduct => Figure::ProductsListed,
        }
    }
}

/// Changes member counts in key order; a count that crosses zero moves its distinct figure
/// (when `counted`).
pub(super) fn apply(
    conn: &mut DbConnection,
    changes: std::collections::BTreeMap<(Member, i64, i64), (i64, bool)>,
    deltas: &mut Deltas,
) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    for ((member, scope, id), (by, counted)) in changes {
        if by == 0 {
            continue;
        }
        let now = diesel::sql_query(
            "INSERT INTO summary_members (figure, scope, member, n) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (figure, scope, member) DO UPDATE SET n = summary_members.n + excluded.n RETURNING n",
        )
        .bind::<Text, _>(member.as_str())
        .bind::<BigInt, _>(scope)
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(by)
        .get_result::<N>(conn)?
        .n;
        let before = now - by;
        if now == 0 {
            diesel::sql_query(
                "DELETE FROM summary_members WHERE figure = $1 AND scope = $2 AND member = $3 AND n = 0",
            )
            .bind::<Text, _>(member.as_str())
            .bind::<BigInt, _>(scope)
            .bind::<BigInt, _>(id)
            .execute(conn)?;
        }
        if counted && (before > 0) != (now > 0) {
            deltas.count(member.figure(), scope, "", if now > 0 { 1 } else { -1 });
        }
    }
    Ok(())
}

/// Locks product `product`'s business (`FOR SHARE`) and then the product itself (`product_lock`:
/// `FOR SHARE` or `FOR UPDATE`) on PostgreSQL, in that order: the order of every write that
/// locks both (a business's delete, a product's delete or move, a curation decision), so that
/// none waits for another in a cycle. Returns the business and whether it is IKM; after a
/// concurrent move of the product between the two reads, the locks are released and taken again
/// in that order.
pub fn lock_product(conn: &mut DbConnection, product: i64, product_lock: &str) -> QueryResult<(i64, bool)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        business_id: i64,
    }
    let postgres = matches!(conn, DbConnection::Pg(_));
    let read = |conn: &mut DbConnection, lock: &str| {
        diesel::sql_query(format!("SELECT business_id FROM products WHERE id = $1{lock}"))
            .bind::<BigInt, _>(product)
            .get_result::<Row>(conn)
            .map(|r| r.business_id)
    };
    if !postgres {
        let business = read(conn, "")?;
        return Ok((business, business_is_ikm(conn, business)?));
    }
    loop {
        // In a savepoint: when the product moved between the two reads, rolling back to it
        // releases the locks just taken, so that the next attempt takes the new business's
        // lock before the product's again.
        let attempt = conn.transaction(|conn| {
            let business = read(conn, "")?;
            let ikm = business_is_ikm(conn, business)?;
            match read(conn, &format!(" {product_lock}"))? == business {
                true => Ok((business, ikm)),
                false => Err(diesel::result::Error::RollbackTransaction),
            }
        });
        match attempt {
            Err(diesel::result::Error::RollbackTransaction) => continue,
            other => return other,
        }
    }
}

/// Whether business `id` is IKM, read `FOR SHARE` on PostgreSQL: a concurrent change of its
/// KBLI waits for this transaction, or this read for it.
pub fn business_is_ikm(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        is_ikm: bool,
    }
    let lock = crate::db::locking(conn, " FOR SHARE");
    diesel::sql_query(format!("SELECT is_ikm FROM businesses WHERE id = $1{lock}"))
        .bind::<BigInt, _>(id)
        .get_result::<Row>(conn)
        .map(|r| r.is_ikm)
}

impl Deltas {
    /// `by` more (or fewer) of member `id` of `kind` in `scope`; `counted`: whether the member
    /// counts in its distinct figure.
    fn member(&mut self, kind: Member, scope: i64, id: i64, by: i64, counted: bool) -> &mut Self {
        let entry = self.members.entry((kind, scope, id)).or_insert((0, counted));
        entry.0 += by;
        entry.1 = counted;
        self
    }

    /// A curation of `product` by `partner` became passed (`sign` 1) or a passed one is gone
    /// (`sign` -1).
    pub fn curation_passed(
        &mut self,
        conn: &mut DbConnection,
        partner: i64,
        product: i64,
        sign: i64,
    ) -> QueryResult<&mut Self> {
        let (business, ikm) = lock_product(conn, product, "FOR SHARE")?;
        Ok(self.passed_curation(partner, product, business, ikm, sign))
    }

    /// [`Deltas::curation_passed`] when the product's business and its IKM flag are known (the
    /// seeder, writing both in the same transaction).
    pub fn passed_curation(
        &mut self,
        partner: i64,
        product: i64,
        business: i64,
        ikm: bool,
        sign: i64,
    ) -> &mut Self {
        for scope in [partner, 0] {
            self.member(Member::PassedProduct, scope, product, sign, true);
            self.member(Member::CuratedBusiness, scope, business, sign, ikm);
        }
        self
    }

    /// Product `product` moved from business `from` to `to` (the caller has just updated the
    /// product row, which it holds locked): its passed curations move with it.
    pub fn product_moved(
        &mut self,
        conn: &mut DbConnection,
        product: i64,
        from: i64,
        to: i64,
    ) -> QueryResult<&mut Self> {
        use crate::db::schema::curations as c;
        let passed: Vec<(i64, i64)> = c::table
            .filter(c::product_id.eq(product))
            .filter(c::status.eq("passed"))
            .group_by(c::retail_partner_id)
            .select((c::retail_partner_id, diesel::dsl::count_star()))
            .load(conn)?;
        if passed.is_empty() {
            return Ok(self);
        }
        let (ikm_from, ikm_to) = (business_is_ikm(conn, from)?, business_is_ikm(conn, to)?);
        for (partner, k) in passed {
            for scope in [partner, 0] {
                self.member(Member::CuratedBusiness, scope, from, -k, ikm_from);
                self.member(Member::CuratedBusiness, scope, to, k, ikm_to);
            }
        }
        Ok(self)
    }

    /// Business `id` became IKM (`ikm`) or stopped being one (the caller has just updated its
    /// row, which it holds locked): it enters or leaves the curated IKM businesses of every
    /// partner whose curation one of its products passed.
    pub fn ikm_changed(&mut self, conn: &mut DbConnection, id: i64, ikm: bool) -> QueryResult<&mut Self> {
        #[derive(QueryableByName)]
        struct Scope {
            #[diesel(sql_type = BigInt)]
            scope: i64,
        }
        let scopes: Vec<Scope> = diesel::sql_query(
            "SELECT scope FROM summary_members WHERE figure = $1 AND member = $2 AND n > 0",
        )
        .bind::<Text, _>(Member::CuratedBusiness.as_str())
        .bind::<BigInt, _>(id)
        .load(conn)?;
        for Scope { scope } in scopes {
            self.count(Figure::CuratedIkmBusinesses, scope, "", if ikm { 1 } else { -1 });
        }
        Ok(self)
    }

    /// A placement of `product` in `outlet` (of `partner`) became active (`sign` 1: listed, or
    /// listed again) or stopped being active (`sign` -1: delisted, or deleted while listed).
    pub fn placement_listed(&mut self, partner: i64, outlet: i64, product: i64, sign: i64) -> &mut Self {
        self.member(Member::StockingOutlet, partner, outlet, sign, true)
            .member(Member::StockingOutlet, 0, outlet, sign, true)
            .member(Member::ListedProduct, partner, product, sign, true)
    }
}
