import HTTP

/// The route table: every address Roster answers, in one place.
enum Routes {
    static let table: [Route] = 
        [
            Route("GET", "/", access: .anonymous) { _, _ in Response.redirect(to: "/databases", status: 302) },
            Route("GET", "/login", access: .anonymous) { try LoginPage.show($0, $1) },
            Route("POST", "/login", access: .anonymous) { try LoginPage.submit($0, $1) },
            Route("POST", "/logout") { try LogoutAction.run($0, $1) },

            Route("GET", "/databases") { try DatabasesPage.show($0, $1) },
            Route("GET", "/segments") { try SegmentsPage.show($0, $1) },
            Route("GET", "/tasks") { try TasksPage.show($0, $1) },

            Route("GET", "/settings") { try SettingsPage.show($0, $1) },
            Route("POST", "/settings/password") { try PasswordChangeAction.run($0, $1) },
            Route("POST", "/settings/users") { try UserCreateAction.run($0, $1) },
            Route("POST", "/settings/users/:id/role") { try UserRoleAction.run($0, $1) },
            Route("POST", "/settings/users/:id/password") { try UserPasswordResetAction.run($0, $1) },
            Route("POST", "/settings/users/:id/delete") { try UserDeleteAction.run($0, $1) },
        ]
}
