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
            Route("GET", "/databases/new") { try DatabaseFormPage.new($0, $1) },
            Route("POST", "/databases") { try DatabaseFormPage.create($0, $1) },
            Route("GET", "/databases/import") { try StructurePages.importForm($0, $1) },
            Route("POST", "/databases/import") { try StructurePages.importFile($0, $1) },
            Route("GET", "/databases/:id") { try DatabasePage.show($0, $1) },
            Route("GET", "/databases/:id/edit") { try DatabaseFormPage.edit($0, $1) },
            Route("POST", "/databases/:id") { try DatabaseFormPage.update($0, $1) },
            Route("GET", "/databases/:id/delete") { try DatabaseDeletePage.confirm($0, $1) },
            Route("POST", "/databases/:id/delete") { try DatabaseDeletePage.delete($0, $1) },
            Route("GET", "/databases/:id/standard-fields") { try StandardFieldsAction.edit($0, $1) },
            Route("POST", "/databases/:id/standard-fields") { try StandardFieldsAction.save($0, $1) },
            Route("GET", "/databases/:id/fields/new") { try FieldPages.new($0, $1) },
            Route("POST", "/databases/:id/fields") { try FieldPages.create($0, $1) },
            Route("GET", "/databases/:id/fields/:field/edit") { try FieldPages.edit($0, $1) },
            Route("POST", "/databases/:id/fields/:field") { try FieldPages.update($0, $1) },
            Route("GET", "/databases/:id/fields/:field/delete") { try FieldPages.confirmDelete($0, $1) },
            Route("POST", "/databases/:id/fields/:field/delete") { try FieldPages.delete($0, $1) },
            Route("GET", "/databases/:id/structure.json") { try StructurePages.download($0, $1) },
            Route("POST", "/databases/:id/clone") { try StructurePages.clone($0, $1) },
            Route("GET", "/databases/:id/export") { try ExportPages.form($0, $1) },
            Route("POST", "/databases/:id/export") { try ExportPages.start($0, $1) },
            Route("POST", "/databases/:id/export-history") { try ExportPages.startHistory($0, $1) },
            Route("GET", "/databases/:id/copy") { try StructurePages.copyForm($0, $1) },
            Route("POST", "/databases/:id/copy") { try StructurePages.copy($0, $1) },

            Route("GET", "/resources") { try ResourcePages.list($0, $1) },
            Route("GET", "/resources/new") { try ResourcePages.new($0, $1) },
            Route("POST", "/resources") { try ResourcePages.create($0, $1) },
            Route("GET", "/resources/:id/edit") { try ResourcePages.edit($0, $1) },
            Route("POST", "/resources/:id") { try ResourcePages.update($0, $1) },
            Route("POST", "/resources/:id/delete") { try ResourcePages.delete($0, $1) },

            Route("GET", "/loyalty") { try LoyaltyPages.list($0, $1) },
            Route("POST", "/loyalty") { try LoyaltyPages.create($0, $1) },
            Route("GET", "/loyalty/:id") { try LoyaltyPages.show($0, $1) },
            Route("POST", "/loyalty/:id/codes") { try LoyaltyPages.addCodes($0, $1) },
            Route("POST", "/loyalty/:id/delete") { try LoyaltyPages.delete($0, $1) },

            Route("GET", "/segments") { try SegmentsPage.show($0, $1) },
            Route("GET", "/tasks") { try TasksPage.show($0, $1) },
            Route("GET", "/tasks/:id") { try TasksPage.detail($0, $1) },
            Route("GET", "/tasks/:id/download") { try ExportPages.download($0, $1) },
            Route("POST", "/tasks/:id/cancel") { try TasksPage.cancel($0, $1) },
            Route("POST", "/tasks/:id/resume") { try TasksPage.resume($0, $1) },

            Route("GET", "/settings") { try SettingsPage.show($0, $1) },
            Route("POST", "/settings/password") { try PasswordChangeAction.run($0, $1) },
            Route("POST", "/settings/users") { try UserCreateAction.run($0, $1) },
            Route("POST", "/settings/users/:id/role") { try UserRoleAction.run($0, $1) },
            Route("POST", "/settings/users/:id/password") { try UserPasswordResetAction.run($0, $1) },
            Route("POST", "/settings/users/:id/delete") { try UserDeleteAction.run($0, $1) },
        ]
}
