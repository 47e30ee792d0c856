//! The Slack simulator as a process, for the demo: `slack-sim --listen 127.0.0.1:3001
//! --channel C0PLATFORM=platform --webhook C0PAYMENTS`. Messages are shown at `/_sim/messages`.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "slack-sim", version, about = "A local Slack Web API and incoming webhooks.")]
struct Args {
    #[arg(long, env = "SLACK_SIM_LISTEN", default_value = "127.0.0.1:3001")]
    listen: std::net::SocketAddr,
    /// A channel the bot is a member of, as `ID=name`; repeatable.
    #[arg(long = "channel", env = "SLACK_SIM_CHANNELS", value_delimiter = ',')]
    channels: Vec<String>,
    /// A channel to create an incoming webhook for (its URL is printed); repeatable.
    #[arg(long = "webhook", env = "SLACK_SIM_WEBHOOKS", value_delimiter = ',')]
    webhooks: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let sim = slack_sim::SlackSim::start_on(args.listen).await?;
    for channel in &args.channels {
        let (id, name) = channel.split_once('=').unwrap_or((channel, channel));
        sim.add_channel(id, name, true);
    }
    println!("Slack Web API: {}  (bot token {})", sim.api_url(), slack_sim::DEFAULT_BOT_TOKEN);
    for channel in &args.webhooks {
        println!("Incoming webhook for {channel}: {}", sim.add_webhook(channel));
    }
    println!("Messages: {}/_sim/messages", sim.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
