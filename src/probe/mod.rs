pub mod logs;
pub mod url;
