//! Page-numbered listings. The body stays the plain JSON array the seed shows; totals and
//! navigation travel in headers: `X-Total-Count`, `X-Total-Pages`, `X-Page`, `X-Per-Page` and
//! an RFC 8288 `Link` header with `next` / `prev`.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use license_shared::{ApiError, codes};
use serde::{Deserialize, Serialize};

use crate::db::Page;

pub(crate) const DEFAULT_PER_PAGE: u32 = 50;
pub(crate) const MAX_PER_PAGE: u32 = 500;

/// `?page=&perPage=` of a listing without filters.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The page a request asks for, from its `page` (1-based) and `perPage` parameters.
pub(crate) fn page(number: Option<u32>, per_page: Option<u32>) -> Result<Page, ApiError> {
    let number = number.unwrap_or(1);
    let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
    if number == 0 {
        return Err(ApiError::bad_request(
            codes::INVALID_QUERY,
            "page: pages are numbered from 1",
        ));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(
            codes::INVALID_QUERY,
            format!("perPage: must be between 1 and {MAX_PER_PAGE}"),
        ));
    }
    Ok(Page { number, per_page })
}

/// A page of items as a JSON array, with the totals in headers.
pub(crate) fn respond<T: Serialize>(uri: &Uri, page: Page, total: i64, items: Vec<T>) -> Response {
    let per_page = i64::from(page.per_page);
    let total_pages = (total.max(0) + per_page - 1) / per_page;
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-total-count", total.to_string());
    put("x-total-pages", total_pages.to_string());
    put("x-page", page.number.to_string());
    put("x-per-page", page.per_page.to_string());

    let mut links = Vec::new();
    if i64::from(page.number) < total_pages {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_link(uri, page.number + 1, page.per_page)
        ));
    }
    if page.number > 1 {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_link(uri, page.number - 1, page.per_page)
        ));
    }
    if !links.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert(header::LINK, value);
        }
    }
    (headers, Json(items)).into_response()
}

/// The request's path and query with `page` and `perPage` replaced.
fn page_link(uri: &Uri, number: u32, per_page: u32) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && name != "page" && name != "perPage"
        })
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{}?{query}page={number}&perPage={per_page}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_replace_paging() {
        let uri: Uri = "/api/licenses?status=active&page=2&perPage=10"
            .parse()
            .expect("uri");
        assert_eq!(
            page_link(&uri, 3, 10),
            "/api/licenses?status=active&page=3&perPage=10"
        );
        let uri: Uri = "/api/licenses".parse().expect("uri");
        assert_eq!(page_link(&uri, 2, 50), "/api/licenses?page=2&perPage=50");
    }

    #[test]
    fn paging_parameters_are_bounded() {
        assert!(page(Some(0), None).is_err());
        assert!(page(None, Some(0)).is_err());
        assert!(page(None, Some(MAX_PER_PAGE + 1)).is_err());
        assert_eq!(
            page(None, None).ok(),
            Some(Page {
                number: 1,
                per_page: 50
            })
        );
    }
}
