//! `lilypad module render|pull|ls`: what module authors and job creators check before paying
//! for a job. `render` prints the template rendered exactly as a job would render it and the
//! job that would run; `pull` fetches a module kept in git and prints the commit its ref
//! names now (the commit a job offer would pin); `ls` lists the checkouts in the cache.

use anyhow::Context;

use crate::cli::ModuleCommand;
use crate::config::Settings;
use crate::module::{self, GitModules, Located};

pub(super) async fn module(command: ModuleCommand, settings: Settings) -> anyhow::Result<()> {
    let modules = GitModules::from_settings(&settings).with_local_repositories(true);
    tokio::task::spawn_blocking(move || match command {
        ModuleCommand::Render { module, inputs } => render(&module, &inputs, &modules),
        ModuleCommand::Pull { module } => pull(&module, &modules),
        ModuleCommand::Ls => list(&modules),
    })
    .await
    .context("the module command stopped")?
}

fn render(name: &str, inputs: &[String], modules: &GitModules) -> anyhow::Result<()> {
    let inputs = module::parse_inputs(inputs).map_err(anyhow::Error::msg)?;
    let located = module::locate(name, modules.shortcut_prefix())?;
    let source = module::pin(&located, name, modules)?;
    if let Some(source) = &source {
        eprintln!(
            "{name}: {} at commit {}, {}",
            source.repo, source.commit, source.path
        );
    }
    let template = module::template_of(name, source.as_ref(), modules)?;
    let text = module::render_text(&template, &inputs).map_err(|message| {
        module::ModuleError::Template {
            module: name.to_string(),
            message,
        }
    })?;
    println!("{text}");
    let job = module::render(name, &template, &inputs)?;
    eprintln!("the job that would run:");
    eprintln!("  image        {}", job.image);
    eprintln!(
        "  entrypoint   {}",
        if job.entrypoint.is_empty() {
            "(the image's own)".to_string()
        } else {
            format!("{:?}", job.entrypoint)
        }
    );
    eprintln!("  environment  {:?}", job.env);
    if let Some(dir) = &job.working_dir {
        eprintln!("  working dir  {dir}");
    }
    eprintln!(
        "  machine      cpu {} millicores, ram {} MB, gpu {}",
        job.machine.cpu, job.machine.ram, job.machine.gpu
    );
    eprintln!(
        "  network      {}",
        if job.network { "yes" } else { "none" }
    );
    eprintln!("  timeout      {} s", job.timeout_secs);
    eprintln!("  outputs      {:?}", job.outputs);
    Ok(())
}

fn pull(name: &str, modules: &GitModules) -> anyhow::Result<()> {
    let located = module::locate(name, modules.shortcut_prefix())?;
    let Located::Git { .. } = located else {
        println!("{name} is built in or a local directory: nothing to fetch");
        return Ok(());
    };
    let source = module::pin(&located, name, modules)?.context("a git module pins")?;
    let dir = modules
        .checkout(&source.repo, &source.commit)
        .map_err(|source_error| module::ModuleError::Git {
            module: name.to_string(),
            source: source_error,
        })?;
    println!("{} {} {}", source.repo, source.commit, dir.display());
    Ok(())
}

fn list(modules: &GitModules) -> anyhow::Result<()> {
    let checkouts = modules.checkouts()?;
    if checkouts.is_empty() {
        eprintln!("no module checkouts under {}", modules.root().display());
    }
    for (repo, commit) in checkouts {
        println!("{repo} {commit}");
    }
    Ok(())
}
