//! `ragd user create|list|delete`: account management for operators, straight against the
//! database (no server needed). Passwords come from standard input only, never from arguments,
//! which other users of the machine can read in the process list.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::cli::UserCommand;
use crate::config::Settings;
use crate::domain::{Email, Password, Role};
use crate::services::auth::accounts::Accounts;
use crate::services::ingest::upload::remove_stored_file;
use crate::store::{Document, DocumentPage, Store};
use crate::{signing_key, store};

/// Runs one user command, writing its report to `out`. `Err` is the message to show.
pub async fn run(
    settings: Settings,
    command: UserCommand,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), String> {
    let store = store::connect(&settings).await.map_err(|e| e.to_string())?;
    let result = execute(&settings, &store, command, stdin, out).await;
    store.close().await;
    result
}

async fn execute(
    settings: &Settings,
    store: &Arc<dyn Store>,
    command: UserCommand,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), String> {
    match command {
        UserCommand::Create { email, admin, .. } => {
            let email = Email::parse(&email).map_err(|e| format!("--email {}", e.expected))?;
            let password = Password::parse(read_password(stdin)?)
                .map_err(|e| format!("password {}", e.expected))?;
            let role = if admin { Role::Admin } else { Role::User };
            let key = signing_key::resolve(settings).map_err(|e| e.to_string())?;
            let accounts = Accounts::new(
                store.clone(),
                &key,
                settings.access_token_ttl,
                true,
                // Nothing here authenticates requests.
                Duration::ZERO,
            );
            let user = accounts
                .create(email, password, role)
                .await
                .map_err(|e| e.to_string())?;
            writeln!(out, "created {} ({}) {}", user.email, user.role, user.id)
                .map_err(|e| e.to_string())
        }
        UserCommand::List => {
            let users = store.list_users().await.map_err(|e| e.to_string())?;
            let mut table = String::from("ID\tEMAIL\tROLE\tCREATED_AT\n");
            for user in users {
                table.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    user.id,
                    user.email,
                    user.role,
                    user.created_at.to_rfc3339()
                ));
            }
            out.write_all(table.as_bytes()).map_err(|e| e.to_string())
        }
        UserCommand::Delete { email } => {
            let email = email.trim().to_lowercase();
            let user = store
                .user_by_email(&email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {email}"))?;
            // The rows go with the user (the schema cascades); their files are listed first.
            let documents = all_documents(store.as_ref(), user.id).await?;
            store
                .delete_user(user.id)
                .await
                .map_err(|e| e.to_string())?;
            let uploads_dir = settings.uploads_dir();
            for document in &documents {
                if let Err(err) = remove_stored_file(&uploads_dir, document).await {
                    writeln!(
                        out,
                        "warning: cannot remove {}: {err}",
                        document.storage_path
                    )
                    .map_err(|e| e.to_string())?;
                }
            }
            writeln!(out, "deleted {email} and everything they owned").map_err(|e| e.to_string())
        }
    }
}

/// Every document `user` owns, a page at a time.
async fn all_documents(store: &dyn Store, user: Uuid) -> Result<Vec<Document>, String> {
    let mut documents: Vec<Document> = Vec::new();
    loop {
        let page = DocumentPage {
            limit: 1_000,
            before: documents.last().map(|document| document.id),
            status: None,
        };
        let listed = store
            .list_documents(user, page)
            .await
            .map_err(|e| e.to_string())?;
        if listed.is_empty() {
            return Ok(documents);
        }
        documents.extend(listed);
    }
}

/// The whole of standard input, less one trailing line break (what `echo` or a here-string
/// adds); any other whitespace is part of the password.
fn read_password(stdin: &mut dyn Read) -> Result<String, String> {
    let mut password = String::new();
    stdin
        .take(4096)
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let trimmed = password
        .strip_suffix("\r\n")
        .or_else(|| password.strip_suffix('\n'))
        .unwrap_or(&password);
    Ok(trimmed.to_owned())
}
