//! Realistic events to start from: the kinds of notice infra-tickets exists for, with field
//! values as AWS writes them (codes, ARNs, descriptions), dated relative to `now`.

use chrono::{DateTime, Duration, Utc};

use crate::model::{SimEntity, SimEvent};

pub const PLATFORM_ACCOUNT: &str = "111111111111";
pub const DATA_ACCOUNT: &str = "222222222222";

pub const REBOOT_ARN: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED/AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED_5e1c4a";
pub const RETIREMENT_ARN: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED_7c1e0a";
pub const RDS_PATCH_ARN: &str =
    "arn:aws:health:eu-west-1::event/RDS/AWS_RDS_MAINTENANCE_SCHEDULED/AWS_RDS_MAINTENANCE_SCHEDULED_4b7e19";
pub const ELASTICACHE_PATCH_ARN: &str = "arn:aws:health:eu-west-1::event/ELASTICACHE/AWS_ELASTICACHE_MAINTENANCE_SCHEDULED/AWS_ELASTICACHE_MAINTENANCE_SCHEDULED_19ab2c";
pub const DIRECT_CONNECT_ARN: &str = "arn:aws:health:eu-central-1::event/DIRECTCONNECT/AWS_DIRECTCONNECT_MAINTENANCE_SCHEDULED/AWS_DIRECTCONNECT_MAINTENANCE_SCHEDULED_d4c3b2";
pub const LAMBDA_RUNTIME_ARN: &str = "arn:aws:health:us-east-1::event/LAMBDA/AWS_LAMBDA_OPERATIONAL_NOTIFICATION/AWS_LAMBDA_OPERATIONAL_NOTIFICATION_0e8f7a";
pub const TWO_TEAMS_ARN: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED/AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED_2f6a9d";
pub const CLOSED_ARN: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_STOP_SCHEDULED/AWS_EC2_INSTANCE_STOP_SCHEDULED_a1b2c3";
pub const RESERVED_INSTANCE_ARN: &str = "arn:aws:health:us-east-1::event/EC2/AWS_EC2_RESERVED_INSTANCE_EXPIRATION_NOTICE/AWS_EC2_RESERVED_INSTANCE_EXPIRATION_NOTICE_77aa11";

/// Start of the day `days` after `now`, at `hour` UTC.
fn at(now: DateTime<Utc>, days: i64, hour: u32) -> DateTime<Utc> {
    let day = (now + Duration::days(days)).date_naive();
    day.and_hms_opt(hour, 0, 0).expect("a valid hour").and_utc()
}

/// `September 1, 2026`.
fn long_date(time: DateTime<Utc>) -> String {
    time.format("%B %-d, %Y").to_string()
}

/// The Node.js end-of-support notice: the deadline is only in the text, with the upstream
/// end-of-life date and two later stages as distractors.
pub fn lambda_runtime_text(deadline: DateTime<Utc>, upstream_eol: DateTime<Utc>) -> String {
    format!(
        "We are contacting you as we have identified that your AWS Account currently has one or more AWS Lambda \
         functions using the Node.js 18 runtime. We are ending support for Node.js 18 in Lambda on {}. This follows \
         Node.js 18 End-Of-Life (EOL) reached on {}. Starting on {}, Lambda will no longer apply security patches and \
         other updates to the Node.js 18 runtime. Starting {}, you will no longer be able to create new Lambda \
         functions using the Node.js 18 runtime. Starting {}, you will no longer be able to update existing functions \
         using the Node.js 18 runtime.",
        long_date(deadline),
        long_date(upstream_eol),
        long_date(deadline),
        long_date(deadline + Duration::days(30)),
        long_date(deadline + Duration::days(61)),
    )
}

/// The events of a realistic account pair, dated relative to `now`.
pub fn events(now: DateTime<Utc>) -> Vec<SimEvent> {
    let noticed = now - Duration::hours(2);
    let entity = |account: &str, value: &str| SimEntity::new(account, value, "PENDING", noticed);
    let reboot_start = at(now, 14, 8);
    let retirement = at(now, 28, 8);
    let lambda_deadline = at(now, 120, 0);
    vec![
        SimEvent::new(REBOOT_ARN, "EC2", "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "upcoming",
            "One or more of your Amazon EC2 instances in the eu-west-1 region is scheduled for a reboot for maintenance. \
             The reboot will occur during the scheduled window. You can reschedule the reboot yourself before it.")
            .with_window(reboot_start, Some(reboot_start + Duration::hours(2)))
            .with_entities(vec![entity(PLATFORM_ACCOUNT, "i-0web0a1b2c3d4e5f6")]),
        SimEvent::new(RETIREMENT_ARN, "EC2", "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "open",
            &format!("EC2 has detected degradation of the underlying hardware hosting your instance i-0web9f8e7d6c5b4a3 in the \
             eu-west-1 region. We will stop your instance after {}.", retirement.format("%Y-%m-%d %H:%M UTC")))
            .with_window(retirement, Some(retirement))
            .with_entities(vec![entity(PLATFORM_ACCOUNT, "i-0web9f8e7d6c5b4a3")]),
        SimEvent::new(RDS_PATCH_ARN, "RDS", "AWS_RDS_MAINTENANCE_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "upcoming",
            "A required operating system update is available for your Amazon RDS DB instances. The update will be applied \
             automatically during your maintenance window after the auto-apply date.")
            .with_window(at(now, 21, 3), None)
            .with_entities(vec![SimEntity {
                arn: Some(format!("arn:aws:rds:eu-west-1:{PLATFORM_ACCOUNT}:db:payments-main")),
                ..entity(PLATFORM_ACCOUNT, "payments-main")
            }]),
        SimEvent::new(ELASTICACHE_PATCH_ARN, "ELASTICACHE", "AWS_ELASTICACHE_MAINTENANCE_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "upcoming",
            "A required service update is available for your Amazon ElastiCache clusters. It will be applied during one \
             of your clusters' upcoming maintenance windows after the auto-update start date.")
            .with_window(at(now, 35, 2), None)
            .with_entities(vec![entity(DATA_ACCOUNT, "sessions-cache-001")]),
        SimEvent::new(DIRECT_CONNECT_ARN, "DIRECTCONNECT", "AWS_DIRECTCONNECT_MAINTENANCE_SCHEDULED", "scheduledChange", "eu-central-1", noticed, "upcoming",
            "Planned maintenance has been scheduled on an AWS Direct Connect router. During this maintenance window, your \
             AWS Direct Connect connection will become unavailable. To avoid interruption, we recommend that you \
             configure a redundant connection.")
            .with_window(at(now, 10, 22), Some(at(now, 11, 4)))
            .with_entities(vec![entity(PLATFORM_ACCOUNT, "dxcon-fgq9abcd")]),
        SimEvent::new(LAMBDA_RUNTIME_ARN, "LAMBDA", "AWS_LAMBDA_OPERATIONAL_NOTIFICATION", "accountNotification", "us-east-1", noticed, "open",
            &lambda_runtime_text(lambda_deadline, now - Duration::days(30)))
            .with_window(noticed, None)
            .with_entities(vec![SimEntity {
                arn: Some(format!("arn:aws:lambda:us-east-1:{DATA_ACCOUNT}:function:nightly-etl")),
                ..entity(DATA_ACCOUNT, format!("arn:aws:lambda:us-east-1:{DATA_ACCOUNT}:function:nightly-etl").as_str())
            }]),
        SimEvent::new(TWO_TEAMS_ARN, "EC2", "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "upcoming",
            "One or more of your Amazon EC2 instances is scheduled for network maintenance. Network connectivity may be \
             lost for several minutes during the window.")
            .with_window(at(now, 9, 6), Some(at(now, 9, 8)))
            .with_entities(vec![entity(PLATFORM_ACCOUNT, "i-0pay1111aaaa2222b"), entity(PLATFORM_ACCOUNT, "i-0web3333cccc4444d")]),
        SimEvent::new(CLOSED_ARN, "EC2", "AWS_EC2_INSTANCE_STOP_SCHEDULED", "scheduledChange", "eu-west-1", noticed, "closed",
            "Your instance was scheduled to be stopped. The instance has been replaced and this event is closed.")
            .with_window(at(now, -3, 8), Some(at(now, -3, 8)))
            .with_entities(vec![SimEntity { status: "RESOLVED".into(), ..entity(PLATFORM_ACCOUNT, "i-0old5555eeee6666f") }]),
        SimEvent::new(RESERVED_INSTANCE_ARN, "EC2", "AWS_EC2_RESERVED_INSTANCE_EXPIRATION_NOTICE", "accountNotification", "us-east-1", noticed, "open",
            &format!("One or more of your Amazon EC2 Reserved Instances will expire on {}. Renew them to keep the discount.", long_date(at(now, 30, 0))))
            .with_entities(vec![entity(PLATFORM_ACCOUNT, "4b2a1c3d-ri-0001")]),
    ]
}
