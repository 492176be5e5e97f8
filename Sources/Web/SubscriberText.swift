import Roster

/// The words of the subscriber's pages in each language they come in. A database's subscription-manager language
/// picks one; a language without its own words here gets English.
enum SubscriberText {
    static let english: [String: String] = [
        "title": "Your subscriptions",
        "fields": "Your details",
        "save": "Save",
        "subscriptions": "Subscriptions",
        "none": "There are no subscriptions here.",
        "unsubscribe": "Unsubscribe",
        "resubscribe": "Subscribe again",
        "topics": "Topics",
        "save_topics": "Save topics",
        "everything": "All messages",
        "unsubscribe_all": "Unsubscribe from everything",
        "resubscribe_all": "Receive messages again",
        "unsubscribed_all": "You are unsubscribed from everything.",
        "saved": "Saved.",
        "failed": "This could not be saved:",
        "invalid": "This link is not valid",
        "invalid_text": "It may be old or cut short. Use the link in the newest message you received.",
        "status_subscribed": "subscribed", "status_unsubscribed": "unsubscribed", "status_complainer": "marked as spam",
        "status_hard_bounced": "undeliverable", "status_unconfirmed": "waiting for confirmation", "status_suspended": "paused",
        "status_invalid": "invalid",
        "confirm_title": "Confirm your subscription",
        "confirm_intro": "Confirm that you want these messages. Nothing is sent to you until you do.",
        "confirm_button": "Yes, subscribe me",
        "confirmed": "Your subscription is confirmed. Thank you!",
        "already_confirmed": "This subscription was already confirmed.",
        "not_confirmable": "This subscription can no longer be confirmed.",
        "expired": "This confirmation link has expired. Subscribe again to get a new one.",
    ]

    static let russian: [String: String] = [
        "title": "Ваши подписки",
        "fields": "Ваши данные",
        "save": "Сохранить",
        "subscriptions": "Подписки",
        "none": "Подписок нет.",
        "unsubscribe": "Отписаться",
        "resubscribe": "Подписаться снова",
        "topics": "Темы",
        "save_topics": "Сохранить темы",
        "everything": "Все сообщения",
        "unsubscribe_all": "Отписаться от всего",
        "resubscribe_all": "Снова получать сообщения",
        "unsubscribed_all": "Вы отписаны от всех сообщений.",
        "saved": "Сохранено.",
        "failed": "Не удалось сохранить:",
        "invalid": "Ссылка недействительна",
        "invalid_text": "Возможно, она устарела или скопирована не полностью. Воспользуйтесь ссылкой из последнего письма.",
        "status_subscribed": "подписка активна", "status_unsubscribed": "вы отписаны", "status_complainer": "отмечено как спам",
        "status_hard_bounced": "адрес недоступен", "status_unconfirmed": "ждёт подтверждения", "status_suspended": "приостановлена",
        "status_invalid": "адрес неверен",
        "confirm_title": "Подтвердите подписку",
        "confirm_intro": "Подтвердите, что хотите получать эти сообщения. До подтверждения мы ничего не отправим.",
        "confirm_button": "Да, подписаться",
        "confirmed": "Подписка подтверждена. Спасибо!",
        "already_confirmed": "Эта подписка уже подтверждена.",
        "not_confirmable": "Эту подписку больше нельзя подтвердить.",
        "expired": "Срок действия ссылки истёк. Подпишитесь снова, чтобы получить новую.",
    ]

    static func words(_ language: String) -> [String: String] {
        language == "ru" ? russian : english
    }

    static func values(_ language: String) -> TemplateValue {
        .dict(TemplateDict(words(language).mapValues { TemplateValue.string($0) }))
    }

    static func status(_ status: ProfileStatus, _ language: String) -> String {
        words(language)["status_" + status.name] ?? status.label
    }
}
